"""The one exception hierarchy of prefect-init.

- :class:`SpecError`: the spec or the command line is wrong (exit 2). Carries every problem found.
- :class:`StepFailed`: a step failed for good; not worth retrying (403, checksum mismatch, exit of a command
  that the spec says is final, the deadline).
- :class:`RetryableError`: a failure worth another attempt (connection refused, timeout, 5xx, 429, ...).

Messages are for the person reading pod logs at 3 a.m.: what failed, where, what to check. They never carry a
secret value: step code builds them from names, paths and redacted URLs, and the engine redacts them again.
"""

from __future__ import annotations

from dataclasses import dataclass


class PrefectInitError(Exception):
    """Base class of every error prefect-init raises on purpose."""


@dataclass(frozen=True)
class SpecProblem:
    """One problem in a spec file: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(PrefectInitError):
    """The spec (or the command line) is wrong. ``str()`` gives one line per problem."""

    def __init__(self, problems: list[SpecProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class StepError(PrefectInitError):
    """A step attempt failed. Subclasses say whether another attempt is worth it."""

    retryable = False


class StepFailed(StepError):
    """A final failure: retrying will not help."""


class RetryableError(StepError):
    """A failure worth another attempt, if the step has retries and time left.

    ``retry_after`` (seconds) is the least pause the other side asked for (HTTP ``Retry-After``).
    """

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StepTimeout(StepFailed):
    """The step's deadline (all attempts included) passed."""


class StepCancelled(StepFailed):
    """The run was stopped (SIGTERM) while the step was running."""
