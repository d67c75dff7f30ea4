"""Structured documents (JSON, YAML, TOML, env files): parsing, required keys, JSON Schema.

Shared by the ``config`` and ``validate`` steps. No message here ever contains a value from a document: only
key paths, formats and what the schema asks for.
"""

from __future__ import annotations

import io
import json
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Literal

import yaml

from prefect_init.errors import StepFailed

Format = Literal["json", "yaml", "toml", "env"]
SUFFIXES: dict[str, Format] = {".json": "json", ".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".env": "env"}
CONTENT_TYPES: dict[str, Format] = {"application/json": "json", "application/yaml": "yaml",
                                    "application/x-yaml": "yaml", "text/yaml": "yaml", "text/x-yaml": "yaml",
                                    "application/toml": "toml"}
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it


def guess_format(*names: str, content_type: str | None = None) -> Format | None:
    """From a content type, else from the first name with a known suffix."""
    if content_type:
        found = CONTENT_TYPES.get(content_type.split(";")[0].strip().lower())
        if found:
            return found
    for name in names:
        for suffix, fmt in SUFFIXES.items():
            if name.split("?")[0].lower().endswith(suffix):
                return fmt
    return None


MAX_DOCUMENT_NODES = 1_000_000
"""Aliases may add at most this many values to a YAML document (each reference to an anchored part counted as a
copy of it). A large document without aliases is not limited: only what aliases multiply is."""


class _TooLarge(Exception):
    pass


def alias_expansion(data: Any, limit: int) -> int:
    """How many values the aliases of ``data`` add when every shared part is counted as often as it is referenced.

    Linear in the distinct containers (sizes are memoised), so a "billion laughs" document is measured, not
    walked; raises :class:`_TooLarge` past ``limit`` and for a document that contains itself."""
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()
    added = 0

    def size(value: Any) -> int:
        nonlocal added
        if not isinstance(value, dict | list):
            return 1
        key = id(value)
        if key in sizes:  # a second reference to the same part: an alias, counted as a copy
            added += sizes[key]
            if added > limit:
                raise _TooLarge(f"its aliases expand it by more than {limit:,} values")
            return sizes[key]
        if key in in_progress:
            raise _TooLarge("it contains itself (a recursive alias)")
        in_progress.add(key)
        children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        total = 1 + sum(size(child) for child in children)
        in_progress.discard(key)
        sizes[key] = total
        return total

    size(data)
    return added


def _bounded(data: Any, where: str) -> Any:
    try:
        alias_expansion(data, MAX_DOCUMENT_NODES)
    except _TooLarge as exc:
        raise StepFailed(f"{where}: refused: {exc}") from None
    except RecursionError:
        raise StepFailed(f"{where}: refused: nested too deeply") from None
    return data


def parse(stream: IO[bytes], fmt: Format, where: str) -> Any:
    """Parse a binary stream; a parse error is final, and its message carries the position, not the text.

    A YAML document is checked against :data:`MAX_DOCUMENT_NODES` before anything walks it."""
    try:
        if fmt == "json":
            return json.load(stream)
        if fmt == "yaml":
            return _bounded(yaml.load(stream, Loader=_YAML_LOADER), where)  # a safe loader (CSafeLoader or SafeLoader)
        if fmt == "toml":
            return tomllib.load(stream)
        from dotenv import dotenv_values

        return dict(dotenv_values(stream=io.TextIOWrapper(stream, encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise StepFailed(f"{where}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise StepFailed(f"{where}: not valid YAML: {exc.problem or 'parse error'}{at}") from None
    except yaml.YAMLError:
        raise StepFailed(f"{where}: not valid YAML") from None
    except tomllib.TOMLDecodeError as exc:
        raise StepFailed(f"{where}: not valid TOML: {str(exc).split('(')[0].strip()}") from None
    except UnicodeDecodeError:
        raise StepFailed(f"{where}: not valid UTF-8 text") from None
    except RecursionError:
        raise StepFailed(f"{where}: refused: nested too deeply") from None


def parse_file(path: Path, fmt: Format, where: str) -> Any:
    with path.open("rb") as stream:
        return parse(stream, fmt, where)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def lookup(data: Any, key: str) -> tuple[bool, Any]:
    """``a.b.0.c`` into nested mappings and lists: (found, value)."""
    for part in key.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return False, None
    return True, data


def missing_keys(data: Any, required: Iterable[str]) -> list[str]:
    """The required dotted keys that are absent or empty (None, "", [], {})."""
    out = []
    for key in required:
        found, value = lookup(data, key)
        if not found or _empty(value):
            out.append(key)
    return out


def load_schema(path: Path) -> Any:
    try:
        schema = json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else yaml.safe_load(
            path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise StepFailed(f"schema {path}: cannot read it ({type(exc).__name__})") from None
    from jsonschema.validators import validator_for

    cls = validator_for(schema)
    try:
        cls.check_schema(schema)
    except Exception as exc:
        raise StepFailed(f"schema {path}: not a valid JSON Schema: {getattr(exc, 'message', exc)}") from None
    return schema


def schema_problems(data: Any, schema: Any, limit: int = 20) -> list[str]:
    """One short line per violation: where, and what the schema asks (never the offending value)."""
    from jsonschema.validators import validator_for

    validator = validator_for(schema)(schema)
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(map(str, error.absolute_path)) or "(top level)"
        asked = error.validator_value
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [k for k in asked if k not in error.instance]
            problems.append(f"{where}: missing required keys: {', '.join(missing)}")
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            extra = sorted(k for k in error.instance if k not in allowed)
            problems.append(f"{where}: unexpected keys: {', '.join(extra)}")
        elif error.validator in ("type", "enum", "const", "format", "minimum", "maximum", "exclusiveMinimum",
                                 "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems"):
            problems.append(f"{where}: must satisfy {error.validator} {json.dumps(asked)[:80]}")
        else:
            problems.append(f"{where}: fails the schema's {error.validator!r} rule")
        if len(problems) >= limit:
            problems.append("... (more)")
            break
    return problems


def check_document(data: Any, where: str, required: Iterable[str] = (), schema: Any = None) -> None:
    """Every problem of a parsed document in one StepFailed (final)."""
    problems = []
    missing = missing_keys(data, required)
    if missing:
        problems.append(f"missing required keys: {', '.join(missing)}")
    if schema is not None:
        problems += schema_problems(data, schema)
    if problems:
        raise StepFailed(f"{where}: " + "; ".join(problems))
