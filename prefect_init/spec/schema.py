"""The JSON Schema of a spec file, made from the models, for an editor's completion and checking as you type.

    # yaml-language-server: $schema=../schemas/prefect-init.schema.json    (the first line of a spec)

    python -m prefect_init.spec.schema            # print it
    python -m prefect_init.spec.schema --write    # write schemas/prefect-init.schema.json (a test compares)

It says what the loader (:mod:`prefect_init.spec.load`) accepts, never less: a file the loader takes is valid.
The loader expands ``${VAR}`` in every string before the models see it and the models read text as numbers and
booleans (``depth: "1"``), so a number, a boolean, a duration, a size, a mode, a choice or a string with a pattern
also accepts a string of that form or one holding ``${``. A step is one of the kinds' models (``oneOf``: each
forbids the other kinds' keys). What only the loader checks (step names unique, ``after:`` known, no cycle, one
of ``dir``/``command`` and the like) the schema leaves to ``prefect-init check``.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import re
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, Discriminator, Field, Tag, TypeAdapter, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from prefect_init.spec import model
from prefect_init.spec.durations import parse_duration
from prefect_init.spec.model import SpecHeader, StepBase
from prefect_init.spec.registry import KINDS, kind_module

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "prefect-init.schema.json"
"""The checked-in schema: what ``# yaml-language-server: $schema=...`` in ``examples/`` points at."""

DRAFT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "prefect-init spec"

VARIABLE = r"\$\{"
"""A string holding ``${``: a variable (or a step output) whose value is checked after it is expanded."""


def _any_case(*words: str) -> str:
    """``true`` -> ``[Tt][Rr][Uu][Ee]`` (JSON Schema's regular expressions have no flags)."""
    return "|".join("".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else re.escape(c) for c in w) for w in words)


_INT_TEXT = r"^\s*[+-]?\d+(_\d+)*(\.0*)?\s*$"
"""Text pydantic reads as a whole number (``"5"``, ``" 5 "``, ``"5.0"``, ``"5_000"``)."""
_FLOAT_TEXT = r"^\s*[+-]?(\d+(_\d+)*(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$"
_BOOL_TEXT = "^(" + _any_case("true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "1", "0") + ")$"
"""Text pydantic reads as a boolean (not for ``optional``, a StrictBool: only ``true`` or ``false``)."""
_DURATION_TEXT = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"
_SIZE_TEXT = r"^\s*\d+\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$"
_MODE_TEXT = r"^\s*(0o?)?[0-7]{3,4}\s*$"


def _text(*forms: str) -> JsonSchemaValue:
    """A string of one of ``forms`` (regular expressions) or holding ``${``."""
    return {"type": "string", "pattern": "|".join((*forms, VARIABLE))}


def _or_text(schema: JsonSchemaValue, *forms: str) -> JsonSchemaValue:
    return {"anyOf": [schema, _text(*forms)]}


_BEFORE: dict[Callable[..., Any], Callable[[JsonSchemaValue], JsonSchemaValue]] = {
    parse_duration: lambda inner: {
        "anyOf": [{"type": "number", "minimum": 0}, _text(_DURATION_TEXT)],
        "description": "A duration: a number of seconds (90, 1.5) or a number with a unit: 250ms, 2s, 1.5m, 1h."},
    model.parse_size: lambda inner: {
        "anyOf": [{"type": "integer", "minimum": 0}, _text(_SIZE_TEXT)],
        "description": "A size: a number of bytes or a whole number with a unit: B, KB, MB, GB, KiB, MiB, GiB."},
    model.parse_mode: lambda inner: {
        **_text(_MODE_TEXT),
        "description": 'An octal file mode as a quoted string: "0644", "644", "0o644", "2775" (0644 unquoted is '
                       "the number 420: an error)."},
    model._split_argv: lambda inner: {
        "anyOf": [{"type": "string"}, inner],
        "description": "A program and its arguments: a list, or one string split as a shell would (no shell runs)."},
}
"""Before-validators widen what a field accepts: each known one says how. An unknown one fails the test."""

_AFTER: dict[str, tuple[str, str]] = {
    "prefect_init.spec.model._check_name": (
        r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
        "1-63 lowercase letters, digits or '-', starting and ending with a letter or digit."),
    "prefect_init.spec.model._check_owner": (
        r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$", '"uid:gid", "uid", "user:group" or "user".'),
    "prefect_init.kinds.wait.targets.http._http_url": (r"^https?://", "An http:// or https:// URL."),
}
"""After-validators of strings whose rule is a pattern (by qualified name: kinds are not imported here), said in
the schema too, so an editor flags ``name: My_App``. Other after-validators only narrow: the schema is wider."""


def _markdown(text: str) -> str:
    """reStructuredText's ````code```` and roles as the plain backticks editors show, a paragraph on one line."""
    text = re.sub(r":(class|func|mod|data|attr|meth):`~?([^`]+)`", r"`\2`", inspect.cleandoc(text))
    return re.sub(r"(?<!\n)\n(?!\n)", " ", text).replace("``", "`")


def _first_paragraph(doc: str | None) -> str | None:
    return _markdown(inspect.cleandoc(doc).split("\n\n", 1)[0]) if doc else None


def _attribute_docs(cls: type) -> dict[str, str]:
    """The docstrings written under fields (``optional: StrictBool = False`` then ``\"\"\"...\"\"\"``), inherited
    ones included: pydantic keeps them only with ``use_attribute_docstrings``."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass.__module__.startswith("pydantic"):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):  # pragma: no cover - a class made at run time
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, following in itertools.pairwise(body):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[node.target.id] = _markdown(following.value.value)
    return docs


def _qualified(function: Any) -> str:
    """``prefect_init.spec.model._check_name`` (a partial, as pydantic wraps a field validator: ``?``)."""
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"


class _Generator(GenerateJsonSchema):
    """Pydantic's generator, told about the spec's own value types and about text in the place of values."""

    unknown_before: list[str]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unknown_before = []

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Retry Delay" beside every key: noise in an editor

    def int_schema(self, schema: core_schema.IntSchema) -> JsonSchemaValue:
        return _or_text(super().int_schema(schema), _INT_TEXT)

    def float_schema(self, schema: core_schema.FloatSchema) -> JsonSchemaValue:
        return _or_text(super().float_schema(schema), _FLOAT_TEXT)

    def bool_schema(self, schema: core_schema.BoolSchema) -> JsonSchemaValue:
        if schema.get("strict"):
            return super().bool_schema(schema)  # `optional`: true or false, nothing else (not even from ${VAR})
        # 0 and 1 are booleans to pydantic; as "integer 0-1" an editor does not offer them beside true and false
        return {"anyOf": [super().bool_schema(schema), {"type": "integer", "minimum": 0, "maximum": 1},
                          _text(_BOOL_TEXT)]}

    def literal_schema(self, schema: core_schema.LiteralSchema) -> JsonSchemaValue:
        json_schema = super().literal_schema(schema)
        if all(isinstance(v, str) for v in schema["expected"]):
            return _or_text(json_schema)  # `format: ${FORMAT}` may expand to one of them
        return json_schema  # `version: 1`: the number (a string, even "1", is refused)

    def str_schema(self, schema: core_schema.StringSchema) -> JsonSchemaValue:
        json_schema = super().str_schema(schema)
        if "pattern" in json_schema or "maxLength" in json_schema:
            return _or_text(json_schema)  # `url: ${CONFIG_URL}`: the pattern is checked once it is expanded
        return json_schema

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        function = schema["function"]["function"]
        widen = _BEFORE.get(function)
        if widen is None:
            self.unknown_before.append(_qualified(function))
            return super().function_before_schema(schema)
        return widen(self.generate_inner(schema["schema"]))

    def function_after_schema(self, schema: core_schema.AfterValidatorFunctionSchema) -> JsonSchemaValue:
        function = schema["function"]["function"]
        inner = self.generate_inner(schema["schema"])
        rule = _AFTER.get(_qualified(function))
        if rule is not None and inner == {"type": "string"}:
            return {**_or_text({"type": "string", "pattern": rule[0]}), "description": rule[1]}
        return inner

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        json_schema = super().default_schema(schema)
        inner = schema["schema"]
        if (inner.get("type") == "function-before" and inner["function"]["function"] is model.parse_mode
                and isinstance(json_schema.get("default"), int)):
            json_schema["default"] = f"{json_schema['default']:04o}"  # 0o644 as written: "0644", not 420
        return json_schema

    def model_schema(self, schema: core_schema.ModelSchema) -> JsonSchemaValue:
        json_schema = super().model_schema(schema)
        cls = schema["cls"]
        properties = json_schema.get("properties", {})
        for name, doc in _attribute_docs(cls).items():
            field = cls.model_fields.get(name)
            key = (field.alias or name) if field is not None else name
            if key in properties and "description" not in properties[key]:
                properties[key]["description"] = doc
        if "description" in json_schema:
            json_schema["description"] = _markdown(json_schema["description"])
        # a step kind's model, a wait target's: titled and described by its key (`config`), from its module
        key = getattr(cls, "kind", None) if issubclass(cls, StepBase) else getattr(cls, "key", None)
        if isinstance(key, str):
            field = cls.model_fields.get(key) or next(
                (f for f in cls.model_fields.values() if f.alias == key), None)
            words = _first_paragraph(sys.modules[cls.__module__].__doc__)
            json_schema["title"] = f"{key} step" if issubclass(cls, StepBase) else f"wait target: {key}"
            if words and key in properties and field is not None and not field.description:
                leaf = properties[key].get("description")  # a command's "a list, or one string ..."
                properties[key]["description"] = f"{words}\n\n{leaf}" if leaf else words
                json_schema.setdefault("description", words)
        return json_schema


def _step_models() -> dict[str, type[StepBase]]:
    """Each kind's ``Step`` model by its key, through the registry (the spec layer imports no kind statically)."""
    return {kind: kind_module(kind).Step for kind in KINDS}


def _kind_of(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = [key for key in value if key in KINDS]
        return keys[0] if len(keys) == 1 else None
    return getattr(value, "kind", None)


def _file_model() -> type[BaseModel]:
    """The header with its ``steps`` typed: one of the kinds (the loader validates them one by one)."""
    choices: Any = tuple(Annotated[cls, Tag(kind)] for kind, cls in _step_models().items())
    step: Any = Annotated[Union[choices], Discriminator(_kind_of)]  # noqa: UP007
    steps: Any = list[step]
    words = "The steps. Each has a `name` and exactly one kind key: " + ", ".join(f"`{k}`" for k in KINDS) + "."
    return create_model(
        "SpecFile", __base__=SpecHeader, steps=(steps, Field(min_length=1, description=words)), __doc__=(
            "A prefect-init spec (version 1): what a pod or a release needs before its application starts. "
            "`prefect-init check SPEC` validates it; docs/reference/spec.md is the reference."))


def _walk(node: Any, change: Callable[[dict[str, Any]], None]) -> None:
    """Call ``change`` on every mapping of a JSON document, innermost first."""
    if isinstance(node, dict):
        for value in node.values():
            _walk(value, change)
        change(node)
    elif isinstance(node, list):
        for item in node:
            _walk(item, change)


def _flatten(node: dict[str, Any]) -> None:
    """``anyOf: [{anyOf: [a, b], description: d}, null]`` -> ``anyOf: [a, b, null], description: d``: a
    described value type made nullable (``timeout: Duration | None``) reads as one list of choices."""
    choices = node.get("anyOf")
    if not isinstance(choices, list):
        return
    flat: list[Any] = []
    for choice in choices:
        if isinstance(choice, dict) and set(choice) <= {"anyOf", "description"} and "anyOf" in choice and (
                "description" not in choice or "description" not in node):
            flat += choice["anyOf"]
            if "description" in choice:
                node["description"] = choice["description"]
        else:
            flat.append(choice)
    node["anyOf"] = flat
    described = [c for c in flat if isinstance(c, dict) and "description" in c and "$ref" not in c]
    if len(described) == 1 and "description" not in node:  # `mode: Mode | None`: said of the key, not a choice
        node["description"] = described[0].pop("description")


def _tidy(schema: dict[str, Any]) -> dict[str, Any]:
    """Readable ``$defs`` names (every kind's model is called ``Step`` and every target's ``Target``, which pydantic
    tells apart by module path: ``config_step``, ``wait_target_tcp`` from the titles given above), and nested
    ``anyOf`` flattened."""
    defs: dict[str, Any] = schema.pop("$defs", {})
    names: dict[str, str] = {}
    for old, definition in defs.items():
        new = re.sub(r"[^A-Za-z0-9]+", "_", definition.get("title", old)).strip("_")
        names[old] = new if new not in names.values() and new not in defs else old
    schema["$defs"] = {names[old]: definition for old, definition in defs.items()}

    def change(node: dict[str, Any]) -> None:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/$defs/" + names[ref.removeprefix("#/$defs/")]
        _flatten(node)

    _walk(schema, change)
    return schema


def _generate() -> tuple[dict[str, Any], list[str]]:
    """The schema and the before-validators it does not know (a test requires none)."""
    generators: list[_Generator] = []

    class Recording(_Generator):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            generators.append(self)

    body = TypeAdapter(_file_model()).json_schema(by_alias=True, mode="validation", schema_generator=Recording)
    body = _tidy(body)
    body.pop("title", None)
    schema = {"$schema": DRAFT, "title": TITLE, **body}
    return schema, sorted({name for g in generators for name in g.unknown_before})


def spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a whole spec file."""
    return _generate()[0]


def schema_text() -> str:
    """:func:`spec_schema` as the checked-in file has it."""
    return json.dumps(spec_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--write"]):
        print("usage: python -m prefect_init.spec.schema [--write]", file=sys.stderr)
        return 2
    text = schema_text()
    if args == ["--write"]:
        SCHEMA_FILE.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_FILE.write_text(text, encoding="utf-8")
        print(f"wrote {SCHEMA_FILE}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
