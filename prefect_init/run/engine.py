"""The engine: one scheduler for both modes, and the local executor with its retry loop.

The scheduler starts each step as soon as everything it needs has succeeded, runs independent steps at the
same time, and marks the dependents of a failed step ``skipped`` (independent branches run on). How one step
is executed is the executor's business: :class:`LocalExecutor` runs our retry loop in-process, in both modes;
in Prefect mode an observer (:mod:`prefect_init.prefect_adapter`) mirrors every start, attempt, retry and outcome into
the Prefect API as task runs and their states.

The safety net (docs/hardening/deadlines.md): each step runs in a daemon thread of its own, and the scheduler
never waits for one past its deadline (or past SIGTERM) plus :func:`stop_grace`. A step still running then is
failed and left behind: a thread cannot be killed, but its late return changes nothing, and a daemon thread does
not hold the process's exit.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from prefect_init.errors import RetryableError, StepCancelled, StepError, StepFailed
from prefect_init.run.identity import Identity
from prefect_init.run.outcome import (
    FAILED,
    NOT_RUN,
    SKIPPED,
    SUCCEEDED,
    RunOutcome,
    StepOutcome,
    now_iso,
    peak_memory_mb,
)
from prefect_init.runtime.context import RunContext, StepLogger
from prefect_init.runtime.redaction import redact
from prefect_init.spec.durations import format_duration
from prefect_init.spec.model import Policy, Spec, StepBase
from prefect_init.spec.plan import build_plan
from prefect_init.spec.registry import kind_module
from prefect_init.words import plural


def run_attempt(step: StepBase, ctx: RunContext) -> str:
    """Run one attempt of ``step``; return its summary. A failure comes out as a :class:`StepError` with a
    redacted message."""
    ctx.check()
    function = kind_module(step.kind).run
    try:
        return redact(str(function(step, ctx) or "done"))
    except StepError as exc:
        if ctx.cancel.is_set() and not isinstance(exc, StepCancelled):
            raise StepCancelled(f"step {step.name!r} stopped: the run was terminated (SIGTERM)") from None
        clean = type(exc)(redact(str(exc)))
        if isinstance(exc, RetryableError) and isinstance(clean, RetryableError):
            clean.retry_after = exc.retry_after
        raise clean from None
    except Exception as exc:  # an unexpected error is final, and carries no value
        raise StepFailed(redact(f"unexpected {type(exc).__name__}: {exc}")) from None


SIGNAL_SLICE = 0.25
"""The longest the scheduler's thread waits at once, so a signal's handler runs within this time."""

STOP_GRACE = 2.0
"""How long past its deadline, or after SIGTERM, the engine still waits for a step to stop by itself (a step
that checks its deadline returns well within this), plus :data:`PROCESS_KILL_GRACE` for a step that runs a
process: then the step is failed and left behind."""

PROCESS_KILL_GRACE = 5.0
"""A step's process gets this long between SIGTERM and SIGKILL (``kill_grace``, ``run_process``'s default)."""

PROCESS_KINDS = ("command", "migrate")
"""The kinds that may run a process, and stop it at the deadline or on SIGTERM within its kill grace."""


def stop_grace(step: StepBase) -> float:
    """How long the engine waits for ``step`` past its deadline or SIGTERM: :data:`STOP_GRACE`, plus the step's
    ``kill_grace`` (or :data:`PROCESS_KILL_GRACE`) when it runs a process."""
    kill_grace = getattr(step, "kill_grace", None)
    if kill_grace is None and step.kind in PROCESS_KINDS:
        kill_grace = PROCESS_KILL_GRACE
    return STOP_GRACE + float(kill_grace or 0.0)


def backoff_delay(attempt: int, policy: Policy, rng: random.Random | None = None) -> float:
    """The pause after failed attempt number ``attempt`` (1-based): doubling, capped, +-20 % jitter."""
    base = min(policy.max_retry_delay, policy.retry_delay * (2 ** (attempt - 1)))
    return min(policy.max_retry_delay, base * (rng or random).uniform(0.8, 1.2))


class Executor(Protocol):
    def execute(self, step: StepBase, policy: Policy) -> StepOutcome:
        """Run ``step`` to its end (all attempts) and say how it went. Never raises."""

    def left_behind(self, name: str) -> int:
        """The engine stopped waiting for step ``name`` (still running past its deadline or SIGTERM): drop what it
        says from now on. Returns the attempt it was at."""


class Reporter(Protocol):
    def step_started(self, name: str) -> None: ...
    def attempt_started(self, name: str, attempt: int) -> None: ...
    def step_retrying(self, name: str, attempt: int, delay: float, error: str) -> None: ...
    def step_finished(self, outcome: StepOutcome) -> None: ...
    def logger_for(self, name: str) -> StepLogger: ...


@dataclass
class LocalExecutor:
    """Runs a step's attempts in this thread: deadline over all attempts, back-off with jitter."""

    spec: Spec
    reporter: Reporter
    cancel: threading.Event
    attempts: dict[str, int] = field(default_factory=dict)
    """The attempt each step is at: what the engine reports of a step it left behind."""
    muted: set[str] = field(default_factory=set)
    """The steps left behind: their later log lines are dropped (the run's last lines are its own)."""

    def left_behind(self, name: str) -> int:
        self.muted.add(name)
        return self.attempts.get(name, 1)

    def execute(self, step: StepBase, policy: Policy) -> StepOutcome:
        started = time.monotonic()
        deadline = started + policy.timeout
        log = _Mutable(self.reporter.logger_for(step.name), step.name, self.muted)
        attempt = 0
        while True:
            attempt += 1
            self.attempts[step.name] = attempt
            ctx = RunContext(step.name, deadline, policy.timeout, self.cancel, log, self.spec.base_dir, attempt)
            self.reporter.attempt_started(step.name, attempt)
            try:
                run_attempt(step, ctx)
                if ctx.outputs:
                    log.info("outputs: " + ", ".join(f"{k}={v}" for k, v in ctx.outputs.items()))
                return StepOutcome(step.name, step.kind, SUCCEEDED, attempt, time.monotonic() - started,
                                   outputs=dict(ctx.outputs))
            except StepError as exc:
                error = str(exc)
                final = not exc.retryable or attempt > policy.retries
                delay = 0.0 if final else backoff_delay(attempt, policy)
                if not final and isinstance(exc, RetryableError) and exc.retry_after:
                    delay = max(delay, exc.retry_after)  # the server asked for at least this (Retry-After)
                if not final and time.monotonic() + delay >= deadline:
                    error = (f"{error} (deadline {format_duration(policy.timeout)} reached after "
                             f"{plural(attempt, 'attempt')})")
                    final = True
                if final:
                    return StepOutcome(step.name, step.kind, FAILED, attempt, time.monotonic() - started, error)
                self.reporter.step_retrying(step.name, attempt, delay, error)
                if self.cancel.wait(delay):
                    return StepOutcome(step.name, step.kind, FAILED, attempt, time.monotonic() - started,
                                       "stopped: the run was terminated (SIGTERM) while waiting to retry")


@dataclass
class _Mutable:
    """A step's logger that falls silent once the engine has left the step behind."""

    log: StepLogger
    name: str
    muted: set[str]

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if self.name not in self.muted:
            self.log.debug(msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if self.name not in self.muted:
            self.log.info(msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if self.name not in self.muted:
            self.log.warning(msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        if self.name not in self.muted:
            self.log.error(msg, *args, **kwargs)


def with_outputs(spec: Spec, name: str, results: dict[str, StepOutcome]) -> StepBase:
    """Step ``name`` with every ``${steps.STEP.KEY}`` replaced by its ancestors' outputs (validated again)."""
    from prefect_init.spec.outputs import references, substitute

    step = spec.step(name)
    raw = next((r for r in (spec.data or {}).get("steps", []) if isinstance(r, dict) and r.get("name") == name), None)
    if raw is None or not any(True for _ in references(raw)):
        return step
    filled = substitute(raw, {n: r.outputs for n, r in results.items()}, name)
    try:
        return type(step).model_validate(filled)
    except ValidationError as exc:  # never the input: it may hold other values of the step
        from prefect_init.spec.load import error_words

        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise StepFailed(f"step {name!r}: with its outputs read in, {where}: {error_words(first)}") from None


def run_spec_with(spec: Spec, executor: Executor, reporter: Reporter, cancel: threading.Event,
                  only: Iterable[str] | None = None) -> RunOutcome:
    """Schedule every step of ``spec`` on ``executor``; return the run's outcome (never raises for a step).

    A step starts once every step it needs has succeeded (or was filtered out by ``only``); a step whose need
    failed or was skipped is never started and ends ``skipped``, also when the need is optional. Each outcome
    carries its step's ``optional``: the run's status counts only the required steps.
    """
    plan = build_plan(spec.steps)
    selected = set(only) if only else set(plan.order)
    outcome = RunOutcome(name=spec.name, started_at=now_iso(), identity=Identity.from_env().to_dict())
    results: dict[str, StepOutcome] = {}
    for name in plan.order:
        if name not in selected:
            results[name] = StepOutcome(name, spec.step(name).kind, NOT_RUN, optional=spec.step(name).optional)
    running: dict[str, _Running] = {}
    changed = threading.Condition()
    cancelled_at: float | None = None

    def finished(name: str, result: StepOutcome) -> None:
        result.optional = spec.step(name).optional  # the reporter says an optional failure is a warning
        results[name] = result
        reporter.step_finished(result)

    def ready(name: str) -> bool:
        return all(results.get(dep) is not None and results[dep].status in (SUCCEEDED, NOT_RUN)
                   for dep in plan.needs[name])

    while True:
        if not cancel.is_set():
            for name in plan.order:
                if name not in results and name not in running and ready(name):
                    try:
                        step = with_outputs(spec, name, results)
                    except StepFailed as exc:  # it reads an output its ancestor did not produce
                        finished(name, StepOutcome(name, spec.step(name).kind, FAILED, error=redact(str(exc))))
                        continue
                    reporter.step_started(name)
                    running[name] = _start(step, spec.policy(step), executor, changed)
        if not running:
            break
        # in slices: a SIGTERM delivered to a worker thread runs its Python handler only when the main
        # thread executes bytecode again, and an untimed wait would hold it until a step ends by itself
        with changed:
            changed.wait_for(lambda: any(r.result is not None for r in running.values()), timeout=SIGNAL_SLICE)
            now = time.monotonic()
            if cancel.is_set() and cancelled_at is None:
                cancelled_at = now
            done = {name: r for name, r in running.items() if r.result is not None}
            left = {name: r for name, r in running.items() if r.result is None and now >= r.stop_at(cancelled_at)}
            for r in left.values():
                r.left_behind = True  # under the lock: its result, whenever it comes, is dropped
        for name, r in done.items():
            del running[name]
            assert r.result is not None
            finished(name, r.result)
        for name, r in left.items():
            del running[name]
            finished(name, r.left_outcome(spec.step(name).kind, executor, cancelled_at, now))
    for name in plan.order:
        if name not in results:
            why = "run stopped by SIGTERM before it started" if cancel.is_set() else "a step it needs failed"
            finished(name, StepOutcome(name, spec.step(name).kind, SKIPPED, error=why))
    outcome.steps = [results[name] for name in plan.order]
    outcome.interrupted = cancel.is_set()
    outcome.finished_at = now_iso()
    outcome.peak_memory_mb = peak_memory_mb()
    return outcome


@dataclass
class _Running:
    """A step's thread as the scheduler sees it: its result once delivered, or left behind at its deadline."""

    name: str
    started: float
    timeout: float
    grace: float
    result: StepOutcome | None = None
    left_behind: bool = False
    thread: threading.Thread | None = None

    def stop_at(self, cancelled_at: float | None) -> float:
        """When the engine stops waiting: the deadline plus the grace, or SIGTERM plus the grace if sooner."""
        at = self.started + self.timeout + self.grace
        return at if cancelled_at is None else min(at, cancelled_at + self.grace)

    def left_outcome(self, kind: str, executor: Executor, cancelled_at: float | None, now: float) -> StepOutcome:
        """The outcome of a step still running when the engine stopped waiting for it."""
        grace = format_duration(round(self.grace, 3))
        if cancelled_at is not None and cancelled_at <= self.started + self.timeout:
            error = (f"step {self.name!r}: still running {grace} after SIGTERM (the step did not stop by itself: "
                     "the run ended without waiting for it)")
        else:
            error = (f"step {self.name!r}: still running at its deadline of {format_duration(self.timeout)} (the "
                     f"step did not stop by itself: the engine gave it {grace} more, then failed it and went on "
                     "without it; what it was doing, a computation or a read that never ends, is in its log "
                     "lines above)")
        attempts = executor.left_behind(self.name)
        if self.thread is not None:
            _LEFT_BEHIND.append(self.thread)
        return StepOutcome(self.name, kind, FAILED, attempts, now - self.started, error)


def _start(step: StepBase, policy: Policy, executor: Executor, changed: threading.Condition) -> _Running:
    """Run ``step`` on ``executor`` in a daemon thread of its own; its result is delivered under ``changed``,
    unless the scheduler has left the step behind by then.

    A daemon thread, not a pool's worker: ``concurrent.futures`` joins its workers at the interpreter's exit, so
    one stuck step would hold the process forever."""
    running = _Running(step.name, time.monotonic(), policy.timeout, stop_grace(step))
    # a copy of this context per step: Prefect's flow-run context lives in contextvars
    context = contextvars.copy_context()

    def work() -> None:
        try:
            result = context.run(executor.execute, step, policy)
        except Exception as exc:  # an executor bug must not lose the status file
            result = StepOutcome(step.name, step.kind, FAILED, error=redact(f"internal error: {exc!r}"))
        with changed:
            if not running.left_behind:  # a late return changes nothing: no status, no outputs
                running.result = result
                changed.notify_all()

    running.thread = threading.Thread(target=work, name=f"step-{step.name}", daemon=True)
    running.thread.start()
    return running


_LEFT_BEHIND: list[threading.Thread] = []
"""The threads of the steps the engine stopped waiting for, in this process."""


def exit_if_steps_left_running(code: int) -> None:
    """End the process now with ``code`` when the engine left a step behind; call it once the outcome is
    published and the observer closed.

    The step's thread is a daemon, but a thread it started may not be (a worker of a step's own thread pool,
    which the interpreter joins at exit; it may outlive the step's own thread), and a daemon writing to stderr at
    the interpreter's end can abort it: so the streams are flushed and the process ends without the
    interpreter's clean-up."""
    if not _LEFT_BEHIND:
        return
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def install_sigterm(cancel: threading.Event) -> None:
    """On SIGTERM (pod deletion) set ``cancel``: running steps stop, the status is still written.

    Only possible from the main thread; elsewhere (a worker's thread) nothing is installed.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        cancel.set()

    signal.signal(signal.SIGTERM, handler)
