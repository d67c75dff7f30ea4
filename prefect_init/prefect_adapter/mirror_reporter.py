"""A reporter that writes what the local reporter writes (stderr, the pod's log) and mirrors it to Prefect."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prefect_init.prefect_adapter.observer import Observer
from prefect_init.run.outcome import FAILED, StepOutcome
from prefect_init.run.reporter import PlainReporter
from prefect_init.runtime.context import StepLogger
from prefect_init.spec.model import Spec


@dataclass
class _TeeLogger:
    inner: StepLogger
    observer: Observer
    step: str | None

    def _both(self, level: str, msg: str, args: tuple[Any, ...]) -> None:
        text = msg % args if args else msg
        getattr(self.inner, {"INFO": "info", "WARN": "warning", "ERROR": "error"}[level])(text)
        self.observer.log(self.step, level, text)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.inner.debug(msg, *args)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._both("INFO", msg, args)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._both("WARN", msg, args)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._both("ERROR", msg, args)


class ObservingReporter:
    def __init__(self, inner: PlainReporter, observer: Observer, spec: Spec) -> None:
        self.inner, self.observer, self.spec = inner, observer, spec

    def logger_for(self, name: str) -> StepLogger:
        return _TeeLogger(self.inner.logger_for(name), self.observer, name)

    def flow_logger(self) -> StepLogger:
        return _TeeLogger(self.inner.logger_for(self.spec.name), self.observer, None)

    def step_started(self, name: str) -> None:
        step = self.spec.step(name)
        self.observer.task_started(name, step.kind, self.spec.policy(step))
        self.inner.step_started(name)

    def attempt_started(self, name: str, attempt: int) -> None:
        self.inner.attempt_started(name, attempt)
        self.observer.attempt_started(name, attempt)

    def step_retrying(self, name: str, attempt: int, delay: float, error: str) -> None:
        self.inner.step_retrying(name, attempt, delay, error)
        self.observer.task_retrying(name, attempt, delay, error)
        self.observer.log(name, "WARN", f"attempt {attempt} failed: {error}; retrying in {delay:.2f}s")

    def step_finished(self, outcome: StepOutcome) -> None:
        self.inner.step_finished(outcome)
        # its task run's states and last line, as Prefect's engine records a task's (no line of the flow run's)
        self.observer.task_finished(outcome)
        if outcome.optional and outcome.status == FAILED:  # what Prefect's engine has no word for
            self.observer.log(None, "WARN", f"step {outcome.name} failed (optional; the run goes on)")

    def close(self) -> None:
        self.inner.close()
