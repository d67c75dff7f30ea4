"""Reading a spec: YAML in, a validated :class:`~prefect_init.spec.model.Spec` or a :class:`SpecError` out.

Every problem is collected (not just the first): the structure, each step's kind, the plan (order, names,
cycles) and the output references, reported as ``SPEC:LINE: steps[2].files.dirs[0].mode: ...``.
"""

from __future__ import annotations

import difflib
import os
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core.core_schema import ErrorType

from prefect_init.errors import SpecError, SpecProblem
from prefect_init.spec.model import Spec, SpecHeader, StepBase
from prefect_init.spec.outputs import reference_problems
from prefect_init.spec.plan import needs_of, plan_problems
from prefect_init.spec.registry import KINDS, kind_module
from prefect_init.spec.source import SourceMap, format_path, load_yaml

_PATTERNS = {
    r"^https?://": "expected an http:// or https:// URL",
    r"^(https?|file)://": "expected an http://, https:// or file:// URL",
    r"^[A-Za-z_][A-Za-z0-9_]{0,62}$": "expected an SQL name: letters, digits and _, not starting with a digit, at "
                                      "most 63 characters",
    r"^\d+([._]\d+)*$": "expected a version like 5, 1.2 or 2_1 (digits separated by . or _)",
    r"^[0-9a-fA-F]{64}$": "expected a SHA-256 digest: 64 hexadecimal digits",
    r"^[^/\s][^\s]*$": "expected a secret's path without a leading / or spaces, like secret/data/myapp",
    r"^[^/\s]+/[^/\s]+$": "expected FLOW/DEPLOYMENT, like prefect-init/myapp",
}
"""Every pattern a model uses, said in words (a test checks that none is missing)."""


_PYDANTIC_TYPES = frozenset(get_args(ErrorType))
"""pydantic's own error types; any other is a custom error raised by a model with its message in words."""


def error_words(err: Any) -> str:
    """A validation error as the person reading the spec says it: never pydantic's own text."""
    kind, ctx = err["type"], err.get("ctx") or {}
    given = err.get("input")
    fixed = {
        "extra_forbidden": "unknown key (check the spelling)",
        "missing": "required",
        "string_type": "expected text" + (f" (quote it: \"{str(given).lower() if isinstance(given, bool) else given}\")"
                                          if isinstance(given, (bool, int, float)) else ""),
        "list_type": "expected a list, like [a, b]" + (" (a command is a list of its arguments, or one string)"
                                                      if isinstance(given, bool) else ""),
        "dict_type": "expected a mapping (key: value)",
        "model_type": "expected a mapping (key: value)",
        "model_attributes_type": "expected a mapping (key: value)",
        "int_type": "expected a whole number",
        "int_parsing": "expected a whole number",
        "int_from_float": "expected a whole number",
        "float_type": "expected a number",
        "float_parsing": "expected a number",
        "bool_type": "expected true or false",
        "bool_parsing": "expected true or false",
        "none_required": "expected nothing here",
    }
    if kind in fixed:
        return fixed[kind]
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), "?")
        return {"greater_than_equal": f"must be at least {bound}", "greater_than": f"must be more than {bound}",
                "less_than_equal": f"must be at most {bound}", "less_than": f"must be less than {bound}"}[kind]
    if kind in ("too_short", "string_too_short"):
        least = ctx.get("min_length", 1)
        return "must not be empty" if least == 1 else f"needs at least {least} items"
    if kind in ("too_long", "string_too_long"):
        return f"has more than {ctx.get('max_length', '?')} {'characters' if kind == 'string_too_long' else 'items'}"
    if kind in ("literal_error", "enum"):
        return f"expected {ctx.get('expected', 'one of the allowed values')}".replace("'", "")
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(ctx.get("pattern")), "not in the expected form")
    if kind == "value_error":  # our own validators' messages: already words
        return str(err["msg"]).removeprefix("Value error, ")
    if kind not in _PYDANTIC_TYPES:  # a custom error of ours (a wait target's kind): its message is words
        return str(err["msg"])
    if kind == "assertion_error":
        return str(err["msg"]).removeprefix("Assertion failed, ")
    return f"not a valid value here ({kind.replace('_', ' ')})"


def closest(word: str, choices: Iterator[str] | list[str] | set[str]) -> str | None:
    """The choice a misspelt ``word`` most likely meant (``comand`` -> ``command``), or None."""
    found = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.75)
    return found[0] if found else None


def _did_you_mean(word: object, choices: Iterator[str] | list[str] | set[str]) -> str:
    guess = closest(word, choices) if isinstance(word, str) else None
    return f" (did you mean `{guess}`?)" if guess else ""


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The pydantic models an annotation can hold: ``X``, ``X | None``, ``list[X]``, ``dict[str, X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    origin = get_origin(annotation)
    if origin is not None or isinstance(annotation, types.UnionType) or origin is Union:
        for arg in get_args(annotation):
            yield from _models_in(arg)


def _keys_at(model: type[BaseModel] | None, loc: tuple[str | int, ...]) -> set[str]:
    """Every key a mapping at ``loc`` (a path below ``model``) may hold: field names and their aliases."""
    models: list[type[BaseModel]] = [model] if model is not None else []
    for part in loc:
        if isinstance(part, int) or part.startswith("<"):
            continue  # a list index or a union tag: the same models
        below: list[type[BaseModel]] = []
        for m in models:
            for name, field in m.model_fields.items():
                if part in (name, field.alias):
                    below.extend(_models_in(field.annotation))
        if below:
            models = below
        # a dict's key (headers: {X: ...}) leaves the models as they are; an unknown part matches nothing
    return {key for m in models for name, f in m.model_fields.items() for key in (name, f.alias) if key}


def _pydantic_problems(exc: ValidationError, prefix: tuple[str | int, ...], source: SourceMap,
                       model: type[BaseModel] | None = None) -> list[SpecProblem]:
    problems = []
    for err in exc.errors(include_url=False):
        # drop pydantic's internal parts: validator names and union tags (``<tcp>``)
        loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and (
            part.startswith("function-") or (part.startswith("<") and part.endswith(">")))))
        words = error_words(err)
        if err["type"] == "extra_forbidden" and loc:
            guess = _did_you_mean(loc[-1], _keys_at(model, tuple(err["loc"][:-1])))
            words = f"unknown key{guess}" if guess else words
        problems.append(source.problem((*prefix, *loc), words))
    return problems


@dataclass(frozen=True)
class _Shape:
    """What the plan reads of a step (name, after), also of a step that is not valid, so the plan's problems
    (a cycle, an unknown or duplicate name) are said with the others rather than after they are fixed."""

    name: str
    after: list[str] | None

    @staticmethod
    def of(raw: Any, index: int) -> _Shape:
        raw = raw if isinstance(raw, dict) else {}
        name = raw.get("name") if isinstance(raw.get("name"), str) else f"<steps[{index}]>"
        after = raw.get("after")
        valid = after is None or (isinstance(after, list) and all(isinstance(a, str) for a in after))
        return _Shape(name, after if valid else [])


def _under(problem: SpecProblem, deferred: set[str]) -> bool:
    """Is ``problem`` about a value (or a part of one) whose variable is resolved later?"""
    return any(problem.path == d or problem.path.startswith((d + ".", d + "[")) for d in deferred)


def _stand_in(raw: dict[str, Any], kind: str) -> StepBase | None:
    """A step whose only problems are values resolved later: its common fields checked, its kind's part kept
    as written. Enough for the plan and the policies; never run."""
    common = {key: raw[key] for key in StepBase.model_fields if key in raw}
    try:
        base = StepBase.model_validate(common)
    except ValidationError:
        return None
    model: type[StepBase] = kind_module(kind).Step
    return model.model_construct(**base.model_dump(exclude_unset=True), **{kind: raw[kind]})


def _validate_step(raw: Any, index: int, source: SourceMap) -> tuple[StepBase | None, list[SpecProblem]]:
    path: tuple[str | int, ...] = ("steps", index)
    if not isinstance(raw, dict):
        return None, [source.problem(path, "a step must be a mapping with a name and one kind key")]
    kinds = [key for key in raw if key in KINDS]
    known = set(StepBase.model_fields)
    if len(kinds) > 1:
        return None, [source.problem(path, f"a step has exactly one kind key, found {len(kinds)}: {', '.join(kinds)}")]
    if not kinds:
        unknown = [key for key in raw if key not in known]
        expected = " | ".join(sorted(KINDS))
        if unknown:
            return None, [source.problem((*path, key), "unknown step kind or key"
                                         + (_did_you_mean(key, [*KINDS, *known]) or f" (kinds: {expected})"))
                          for key in unknown]
        return None, [source.problem(path, f"a step needs one kind key: {expected}")]
    model: type[StepBase] = kind_module(kinds[0]).Step
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, _pydantic_problems(exc, path, source, model)


def parse_spec(text: str, file: str, env: Mapping[str, str] | None = None, base_dir: str | None = None,
               defer_unset: bool = False) -> Spec:
    """Validate spec text; raise :class:`SpecError` with every problem found.

    Relative paths resolve against ``base_dir``, by default the spec file's directory (the current one for
    ``-``, standard input). With ``defer_unset``, a variable that is not set here is no error, and neither is
    any problem of the value that names it: it is resolved where the spec runs (``render``, ``deploy``)."""
    deferred_paths: set[tuple[str | int, ...]] | None = set() if defer_unset else None
    data, source, problems = load_yaml(text, file, os.environ if env is None else env, deferred_paths)
    deferred = {format_path(p) for p in deferred_paths or ()}
    if data is None:  # broken YAML (its problem is said), or a document that is just `null`
        raise SpecError(problems or [source.problem((), "the spec must be a mapping with version, name and steps")])
    if not isinstance(data, dict):
        raise SpecError([*problems, source.problem((), "the spec must be a mapping with version, name and steps")])
    header: SpecHeader | None = None
    try:
        header = SpecHeader.model_validate(data)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, (), source, SpecHeader)
    raw_steps: list[Any] = data["steps"] if isinstance(data.get("steps"), list) else []
    steps: list[StepBase] = []
    shapes: list[_Shape] = []  # every step as the plan sees it, valid or not: its problems are said at once
    for i, raw in enumerate(raw_steps):
        step, step_problems = _validate_step(raw, i, source)
        if deferred and step_problems:
            step_problems = [p for p in step_problems if not _under(p, deferred)]
            if step is None and not step_problems:
                step = _stand_in(raw, next(key for key in raw if key in KINDS))
        problems += step_problems
        if step is not None:
            steps.append(step)
        shapes.append(_Shape.of(raw, i) if step is None else _Shape(step.name, step.after))
    plan = plan_problems(shapes, source)
    problems += plan
    if not problems and header is not None:
        problems += reference_problems(header.steps, needs_of(steps), source)
    if problems or header is None:
        raise SpecError(sorted(problems, key=lambda p: p.line if p.line is not None else 0))
    if base_dir is not None:
        base = Path(base_dir).resolve()
    else:
        base = Path(file).resolve().parent if file not in ("-", "<string>") else Path.cwd()
    return Spec(file=file, name=header.name, text=text, defaults=header.defaults, status_file=header.status_file,
                steps=steps, base_dir=base, tags=list(header.tags), data=data, deferred=tuple(sorted(deferred)))


def load_spec(path: str, env: Mapping[str, str] | None = None, base_dir: str | None = None,
              defer_unset: bool = False) -> Spec:
    """Read and validate the spec at ``path`` (``-`` reads standard input); see :func:`parse_spec`."""
    import sys

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SpecError([SpecProblem(path, None, "", f"cannot read the spec: {reason}")]) from None
    return parse_spec(text, path, env, base_dir, defer_unset)
