"""The spec model (version 1) and its loader: YAML in, a validated :class:`Spec` or a :class:`SpecError` out.

Every problem is collected (not just the first) and reported as ``SPEC:LINE: steps[2].files.dirs[0].mode: ...``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .durations import Duration
from .errors import SpecError, SpecProblem
from .registry import KINDS, kind_module
from .yamlsource import SourceMap, format_path, load_yaml

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("must be 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


def parse_mode(value: object) -> int:
    """``"0644"`` / ``"644"`` / ``"0o644"`` -> 0o644. Unquoted YAML numbers are refused: YAML reads 0644 as 420."""
    if isinstance(value, str) and re.fullmatch(r"(0o?)?[0-7]{3,4}", value.strip()):
        text = value.strip().removeprefix("0o")
        return int(text, 8)
    raise ValueError('expected an octal mode as a quoted string, like "0644"')


Mode = Annotated[int, BeforeValidator(parse_mode)]


def _check_owner(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?", value):
        raise ValueError('expected "uid:gid", "uid", "user:group" or "user"')
    return value


Owner = Annotated[str, AfterValidator(_check_owner)]


class StrictModel(BaseModel):
    """Unknown keys are errors (a typo must not pass silently); models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FromFile(StrictModel):
    """A value read from a file at run time (``{file: /secrets/token}``): a secret, masked everywhere."""

    file: str


_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KiB": 1024, "MiB": 1024**2,
               "GiB": 1024**3}


def parse_size(value: object) -> int:
    """``10MiB``, ``512KB``, ``1000`` -> bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        return int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    raise ValueError("expected a size like 10MiB, 512KB or a number of bytes")


Size = Annotated[int, BeforeValidator(parse_size)]


def _split_argv(value: object) -> object:
    import shlex

    return shlex.split(value) if isinstance(value, str) else value


Argv = Annotated[list[str], BeforeValidator(_split_argv), Field(min_length=1)]
"""A program and its arguments: a list, or a string split as a shell would (no shell runs)."""


class Defaults(StrictModel):
    timeout: Duration = 300.0
    retries: int = Field(default=2, ge=0, le=100)
    retry_delay: Duration = 1.0
    max_retry_delay: Duration = 30.0


class StepBase(StrictModel):
    """What every step has. A kind subclasses this and adds one field named after the kind."""

    kind: ClassVar[str]

    name: Name
    after: list[Name] | None = None
    timeout: Duration | None = None
    retries: int | None = Field(default=None, ge=0, le=100)
    retry_delay: Duration | None = None
    max_retry_delay: Duration | None = None

    def describe(self) -> str:
        """One short line for `prefect-init check` and logs (never a secret value)."""
        return self.kind


@dataclass(frozen=True)
class Policy:
    """A step's effective deadline and retry policy (its own values, else the spec's defaults)."""

    timeout: float
    retries: int
    retry_delay: float
    max_retry_delay: float


def _check_tag(value: str) -> str:
    if not value.strip() or len(value) > 255:
        raise ValueError("a tag is 1-255 characters")
    return value


class _Header(StrictModel):
    version: Literal[1]
    name: Name
    tags: list[Annotated[str, AfterValidator(_check_tag)]] = Field(default_factory=list)
    defaults: Defaults = Defaults()
    status_file: str | None = None
    steps: list[Any] = Field(min_length=1)


@dataclass
class Spec:
    """A loaded, validated spec."""

    file: str
    name: str
    text: str
    defaults: Defaults
    status_file: str | None
    steps: list[StepBase]
    base_dir: Path = field(default_factory=Path.cwd)
    tags: list[str] = field(default_factory=list)
    """Tags of the spec's flow runs (``tags:``, ``${VAR}`` expanded), besides the ones prefect-init sets."""
    data: Any = None
    """The spec as plain data, variables expanded (for ``render``, which reads paths from it)."""
    deferred: tuple[str, ...] = ()
    """Paths (``steps[1].vault.address``) whose variables are not set here: only from :func:`parse_spec` with
    ``defer_unset``, for ``render`` and ``deploy``; such a spec is never run (its steps may be stand-ins)."""

    def step(self, name: str) -> StepBase:
        return next(s for s in self.steps if s.name == name)

    def policy(self, step: StepBase) -> Policy:
        d = self.defaults
        return Policy(
            timeout=step.timeout if step.timeout is not None else d.timeout,
            retries=step.retries if step.retries is not None else d.retries,
            retry_delay=step.retry_delay if step.retry_delay is not None else d.retry_delay,
            max_retry_delay=step.max_retry_delay if step.max_retry_delay is not None else d.max_retry_delay,
        )

    def resolve(self, path: str) -> Path:
        """A path from the spec: relative paths are relative to the spec file's directory."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


_MESSAGES = {
    "extra_forbidden": "unknown key (check the spelling)",
    "missing": "required",
}


def _pydantic_problems(exc: ValidationError, prefix: tuple[str | int, ...], source: SourceMap) -> list[SpecProblem]:
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        # drop pydantic's internal parts: validator names and union tags (``<tcp>``)
        loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and (
            part.startswith("function-") or (part.startswith("<") and part.endswith(">")))))
        message = _MESSAGES.get(err["type"]) or str(err["msg"]).removeprefix("Value error, ")
        problems.append(source.problem((*prefix, *loc), message))
    return problems


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
            return None, [source.problem((*path, key), f"unknown step kind or key (kinds: {expected})")
                          for key in unknown]
        return None, [source.problem(path, f"a step needs one kind key: {expected}")]
    model: type[StepBase] = kind_module(kinds[0]).Step
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, _pydantic_problems(exc, path, source)


def parse_spec(text: str, file: str, env: Mapping[str, str] | None = None, base_dir: str | None = None,
               defer_unset: bool = False) -> Spec:
    """Validate spec text; raise :class:`SpecError` with every problem found.

    Relative paths resolve against ``base_dir``, by default the spec file's directory (the current one for
    ``-``, standard input). With ``defer_unset``, a variable that is not set here is no error, and neither is
    any problem of the value that names it: it is resolved where the spec runs (``render``, ``deploy``)."""
    from .plan import plan_problems  # the plan checks order, names and cycles

    deferred_paths: set[tuple[str | int, ...]] | None = set() if defer_unset else None
    data, source, problems = load_yaml(text, file, os.environ if env is None else env, deferred_paths)
    deferred = {format_path(p) for p in deferred_paths or ()}
    if data is None:  # broken YAML (its problem is said), or a document that is just `null`
        raise SpecError(problems or [source.problem((), "the spec must be a mapping with version, name and steps")])
    if not isinstance(data, dict):
        raise SpecError([*problems, source.problem((), "the spec must be a mapping with version, name and steps")])
    try:
        header = _Header.model_validate(data)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, (), source)
        raw_steps = data.get("steps") if isinstance(data.get("steps"), list) else []
        for i, raw in enumerate(raw_steps or []):
            problems += _validate_step(raw, i, source)[1]
        raise SpecError(problems) from None
    steps: list[StepBase] = []
    for i, raw in enumerate(header.steps):
        step, step_problems = _validate_step(raw, i, source)
        if deferred and step_problems:
            step_problems = [p for p in step_problems if not _under(p, deferred)]
            if step is None and not step_problems:
                step = _stand_in(raw, next(key for key in raw if key in KINDS))
        problems += step_problems
        if step is not None:
            steps.append(step)
    if not problems:
        problems += plan_problems(steps, source)
    if not problems:
        from .outputs import reference_problems
        from .plan import needs_of

        problems += reference_problems(header.steps, needs_of(steps), source)
    if problems:
        raise SpecError(problems)
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
