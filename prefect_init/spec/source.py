"""Read a spec's YAML into plain data, keeping the line of every value for error messages.

Environment references are expanded here, scalar by scalar (a value can never inject YAML structure), so an
unset variable is reported at its own line before anything runs. Duplicate keys are errors: YAML would
silently keep the last one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from prefect_init.errors import SpecProblem
from prefect_init.spec.interpolate import UnsetVariable, expand

Path_ = tuple[str | int, ...]

MAX_SPEC_NODES = 10_000
"""A spec may expand (its aliases and merge keys counted as copies) to at most this many YAML nodes: a spec of
nested anchors (a "billion laughs") is refused in milliseconds instead of filling the pod's memory."""


class _TooLarge(Exception):
    pass


class _Constructor(yaml.SafeLoader):
    """SafeLoader used only to turn scalar nodes into Python values with YAML's usual typing."""


def format_path(path: Path_) -> str:
    """``('steps', 2, 'vault', 'auth')`` -> ``steps[2].vault.auth``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class SourceMap:
    """Line numbers (1-based) of every node of a spec, by path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[Path_, int] = {}

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None

    def problem(self, path: Path_, message: str) -> SpecProblem:
        return SpecProblem(self.file, self.line_of(path), format_path(path), message)


def load_yaml(text: str, file: str, env: Mapping[str, str],
              deferred: set[Path_] | None = None) -> tuple[Any, SourceMap, list[SpecProblem]]:
    """Parse ``text``; return (data, source map, problems). Data is None when the YAML itself is broken.

    With ``deferred`` (a set to fill), a value naming a variable that is not set here is kept as written and its
    path added to the set instead of being a problem: for ``render`` and ``deploy``, where variables are
    resolved later, in the pod.
    """
    source = SourceMap(file)
    problems: list[SpecProblem] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        return None, source, [SpecProblem(file, line, "", f"not valid YAML: {what}")]
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML parse error is a MarkedYAMLError
        return None, source, [SpecProblem(file, None, "", f"not valid YAML: {exc}")]
    if root is None:
        return None, source, [SpecProblem(file, 1, "", "the spec is empty")]
    constructor = _Constructor("")
    built = 0

    def build(node: yaml.Node, path: Path_) -> Any:
        nonlocal built
        built += 1
        if built > MAX_SPEC_NODES:
            raise _TooLarge
        source.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            constructor.flatten_mapping(node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = constructor.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool) or key is None:
                    problems.append(source.problem(path, "keys must be plain strings"))
                    continue
                key = str(key) if not isinstance(key, str) else key
                if key in out:
                    source.lines[(*path, key)] = key_node.start_mark.line + 1
                    problems.append(source.problem((*path, key), "duplicate key"))
                    continue
                out[key] = build(value_node, (*path, key))
                source.lines[(*path, key)] = key_node.start_mark.line + 1
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = constructor.construct_object(node, deep=True)
        if isinstance(value, str):
            try:
                return expand(value, env)
            except UnsetVariable as exc:
                if deferred is None:
                    problems.append(source.problem(path, str(exc)))
                else:
                    deferred.add(path)
                return value
            except ValueError as exc:
                problems.append(source.problem(path, str(exc)))
                return value
        return value

    try:
        data = build(root, ())
    except _TooLarge:
        return None, source, [SpecProblem(file, None, "", f"refused: the spec expands to more than "
                                          f"{MAX_SPEC_NODES:,} YAML nodes (aliases of aliases?)")]
    except RecursionError:
        return None, source, [SpecProblem(file, None, "", "refused: the spec is nested too deeply")]
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        return None, source, [SpecProblem(file, mark.line + 1 if mark else None, "", f"not valid YAML: {exc.problem}")]
    return data, source, problems
