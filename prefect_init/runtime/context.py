"""What a step function gets besides its model: deadline, cancellation, logger, paths."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from prefect_init.errors import StepCancelled, StepFailed, StepTimeout
from prefect_init.runtime.redaction import redact
from prefect_init.spec.durations import format_duration
from prefect_init.spec.outputs import KEY


class StepLogger(Protocol):
    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def error(self, msg: str, *args: Any, **kwargs: Any) -> None: ...


@dataclass
class RunContext:
    """One attempt of one step.

    Step functions must honour :attr:`deadline` (a :func:`time.monotonic` value) and :attr:`cancel`: a thread
    cannot be killed, so a step that waits, polls or runs a process checks :meth:`remaining` and :meth:`check`.
    A step that does not is failed by the engine at its deadline (or SIGTERM) plus a grace and left behind
    (:func:`prefect_init.run.engine.stop_grace`, docs/hardening/deadlines.md): whatever it returns later is
    dropped, and its log lines stop.
    """

    step_name: str
    deadline: float
    timeout: float
    cancel: threading.Event
    log: StepLogger
    base_dir: Path
    attempt: int = 1
    outputs: dict[str, str] = field(default_factory=dict)

    def output(self, key: str, value: object) -> None:
        """Record an output of this step (``${steps.STEP.KEY}`` for later steps); never a secret."""
        self.outputs[key] = check_output(key, str(value))

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        """Raise if the run was cancelled or the deadline passed."""
        if self.cancel.is_set():
            raise StepCancelled(f"step {self.step_name!r} stopped: the run was terminated (SIGTERM)")
        if self.remaining() <= 0:
            raise StepTimeout(f"step {self.step_name!r} timed out after {format_duration(self.timeout)}")

    def sleep(self, seconds: float) -> None:
        """Sleep, but no later than the deadline and no longer than until cancellation; then :meth:`check`."""
        self.cancel.wait(max(0.0, min(seconds, self.remaining())))
        self.check()

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    def safe(self, text: str) -> str:
        return redact(text)


def check_output(key: str, value: str) -> str:
    """An output as it may be recorded: a plain key, a string value that is no secret."""
    if not KEY.match(key):
        raise StepFailed(f"output {key!r}: a key is letters, digits and '_', not starting with a digit")
    if redact(value) != value:
        raise StepFailed(f"output {key!r}: its value is (or holds) a secret; outputs are not secrets and go to the "
                         "status file and Prefect: write secrets to files instead")
    return value
