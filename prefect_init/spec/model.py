"""The spec model (version 1): the header, the defaults, what every step has (:class:`StepBase`) and the loaded
:class:`Spec`. Reading YAML into it is :mod:`prefect_init.spec.load`'s."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from prefect_init.spec.durations import Duration

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
    optional: StrictBool = False
    """``optional: true``: the step's failure (after its retries) is a warning, not the run's; steps that need it are
    still skipped. A boolean only (``"yes"`` or ``1`` is refused, not read as true)."""

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


class SpecHeader(StrictModel):
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
