"""What the local mode shows: plain timestamped lines (containers, pipes) or a live view (a terminal).

Every line goes through :func:`prefect_init.runtime.redaction.redact` first.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from prefect_init.run.outcome import FAILED, SUCCEEDED, StepOutcome
from prefect_init.runtime.context import StepLogger
from prefect_init.runtime.redaction import redact
from prefect_init.spec.durations import format_duration
from prefect_init.words import plural


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _LineLogger:
    def __init__(self, emit: Any, name: str) -> None:
        self._emit, self._name = emit, name

    def _log(self, level: str, msg: str, *args: Any) -> None:
        self._emit(level, self._name, msg % args if args else msg)

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        pass

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log("INFO", msg, *args)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log("WARN", msg, *args)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._log("ERROR", msg, *args)


def _finished_text(outcome: StepOutcome) -> str:
    if outcome.status == SUCCEEDED:
        tries = f" ({outcome.attempts} attempts)" if outcome.attempts > 1 else ""
        return f"succeeded in {outcome.duration_s:.2f}s{tries}"
    if outcome.status == FAILED and outcome.optional:
        return (f"failed (optional; the run goes on) after {plural(outcome.attempts, 'attempt')}, "
                f"{outcome.duration_s:.2f}s: {outcome.error}")
    if outcome.status == FAILED:
        return f"failed after {plural(outcome.attempts, 'attempt')}, {outcome.duration_s:.2f}s: {outcome.error}"
    return f"{outcome.status}" + (" (optional)" if outcome.optional else "") + (
        f": {outcome.error}" if outcome.error else "")


def _level(outcome: StepOutcome) -> str:
    """INFO for a success; ERROR for a failure, but a WARN for an optional step's (the run goes on); WARN else."""
    if outcome.status == SUCCEEDED:
        return "INFO"
    return "ERROR" if outcome.status == FAILED and not outcome.optional else "WARN"


class PlainReporter:
    """``2026-11-24T16:50:00.123Z INFO  [step] message``: one line per event, for pod logs."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def emit(self, level: str, name: str, message: str) -> None:
        text = redact(message)
        with self._lock:
            for line in text.splitlines() or [""]:
                self.stream.write(f"{_stamp()} {level:<5} [{name}] {line}\n")
            self.stream.flush()

    def logger_for(self, name: str) -> StepLogger:
        return _LineLogger(self.emit, name)

    def step_started(self, name: str) -> None:
        self.emit("INFO", name, "started")

    def attempt_started(self, name: str, attempt: int) -> None:
        pass

    def step_retrying(self, name: str, attempt: int, delay: float, error: str) -> None:
        self.emit("WARN", name, f"attempt {attempt} failed: {error}")
        self.emit("WARN", name, f"retrying in {format_duration(round(delay, 2))}")

    def step_finished(self, outcome: StepOutcome) -> None:
        self.emit(_level(outcome), outcome.name, _finished_text(outcome))

    def close(self) -> None:
        pass


class LiveReporter(PlainReporter):
    """On a terminal: a live line per step (spinner, elapsed, attempts); log lines scroll above it."""

    def __init__(self, order: list[str]) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self.console = Console(stderr=True)
        self.order = order
        self.state: dict[str, dict[str, Any]] = {n: {"status": "waiting", "attempt": 0} for n in order}
        self.live = Live(self._render(), console=self.console, refresh_per_second=8, transient=False,
                         get_renderable=self._render)
        self.live.start()

    def _render(self) -> Any:
        from rich.spinner import Spinner
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        for name in self.order:
            s = self.state[name]
            status = s["status"]
            if status == "running":
                elapsed = time.monotonic() - s["started"]
                attempt = f", attempt {s['attempt'] + 1}" if s["attempt"] else ""
                table.add_row(Spinner("dots"), name, f"[cyan]{elapsed:.1f}s{attempt}")
            else:
                mark = {"succeeded": "[green]✔", "failed": "[red]✘", "waiting": "[dim]·"}.get(status, "[yellow]-")
                if s.get("optional") and status == "failed":
                    mark = "[yellow]✘"
                table.add_row(mark, name, f"[dim]{s.get('text', status)}")
        return table

    def emit(self, level: str, name: str, message: str) -> None:
        style = {"WARN": "yellow", "ERROR": "red"}.get(level, "dim")
        for line in redact(message).splitlines() or [""]:
            self.console.print(f"[{style}]{name}[/] {line}", markup=True, highlight=False, soft_wrap=True)

    def step_started(self, name: str) -> None:
        self.state[name].update(status="running", started=time.monotonic())

    def step_retrying(self, name: str, attempt: int, delay: float, error: str) -> None:
        self.state[name]["attempt"] = attempt
        super().step_retrying(name, attempt, delay, error)

    def step_finished(self, outcome: StepOutcome) -> None:
        self.state[outcome.name].update(status=outcome.status, optional=outcome.optional,
                                        text=redact(_finished_text(outcome)))
        if outcome.status == FAILED:
            self.emit(_level(outcome), outcome.name, _finished_text(outcome))

    def close(self) -> None:
        self.live.stop()
