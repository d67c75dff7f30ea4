"""The ``wait`` step: every dependency a pod waits for, checked at the same time.

.. code-block:: yaml

    - name: wait-for-services
      wait:
        - postgres: ${DATABASE_URL}
        - redis: redis://redis:6379/0
        - tcp: vault:8200
        - http: http://elasticsearch:9200/_cluster/health
          json: {status: [green, yellow]}
        - dns: config-server.default.svc.cluster.local
        - file: /shared/ready
          timeout: 30s                 # a target may have its own, shorter deadline
      timeout: 2m
      interval: 25ms                   # first pause; doubles with jitter ...
      max_interval: 250ms              # ... up to this cap
      attempt_timeout: 1s              # one attempt's own limit (a black-holed address)

The step succeeds when every target is ready. At the deadline it fails with one line per target that was not:
``postgres://app:****@db:5432/app: connection refused (41 attempts over 60.0 s)``.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Discriminator, Field, Tag

from prefect_init.errors import StepCancelled, StepFailed
from prefect_init.kinds.wait.loop import PollResult, poll
from prefect_init.kinds.wait.targets import TARGETS, TargetBase, target_models
from prefect_init.runtime.context import RunContext
from prefect_init.spec.durations import Duration
from prefect_init.spec.model import StepBase
from prefect_init.words import plural

PROGRESS_EVERY = 10.0
"""Seconds between "still waiting" log lines for a target."""


def _target_tag(value: Any) -> str | None:
    if isinstance(value, TargetBase):
        return f"<{value.key}>"
    if isinstance(value, dict):
        keys = [k for k in value if k in TARGETS]
        return f"<{keys[0]}>" if len(keys) == 1 else None
    return None


if TYPE_CHECKING:
    Target = TargetBase
else:  # a union tagged by which target key a mapping has, built from the TARGETS registry
    Target = Annotated[
        Union[tuple(Annotated[model, Tag(f"<{key}>")] for key, model in target_models().items())],  # noqa: UP007
        Discriminator(_target_tag, custom_error_type="wait_target",
                      custom_error_message=f"a wait target has exactly one of: {', '.join(TARGETS)}"),
    ]


class Step(StepBase):
    kind = "wait"
    wait: list[Target] = Field(min_length=1)
    interval: Duration = 0.025
    max_interval: Duration = 0.25
    attempt_timeout: Duration = 1.0

    def describe(self) -> str:
        return f"wait: {', '.join(t.key for t in self.wait)}"


def wait_for_target(target: TargetBase, ctx: RunContext, *, interval: float = 0.025, max_interval: float = 0.25,
                    attempt_timeout: float = 1.0) -> PollResult:
    """Poll one target until it is ready or its deadline (the step's, or its own shorter one) passes."""
    deadline = ctx.deadline if target.timeout is None else min(ctx.deadline, time.monotonic() + target.timeout)
    label = target.label()
    last_log = [0.0]

    def progress(attempt: int, reason: str) -> None:
        now = time.monotonic()
        if attempt == 1 or now - last_log[0] >= PROGRESS_EVERY:
            last_log[0] = now
            ctx.log.info(f"waiting for {label}: {reason}" + (f" ({attempt} attempts)" if attempt > 1 else ""))

    checker = target.checker(ctx)
    try:
        result = poll(checker.check, deadline, ctx.cancel, interval=interval, max_interval=max_interval,
                      attempt_timeout=attempt_timeout, on_failure=progress)
    finally:
        checker.close()
    if result.ready:
        ctx.log.info(f"ready: {label} ({plural(result.attempts, 'attempt')}, {result.elapsed:.2f}s)")
    return result


def not_ready(target: TargetBase, result: PollResult) -> str:
    """``postgresql://app:****@db:5432/app: connection refused (41 attempts over 60.0 s)``"""
    return f"{target.label()}: {result.last_error or 'not checked'} ({plural(result.attempts, 'attempt')} over " \
           f"{result.elapsed:.1f} s)"


def run(step: Step, ctx: RunContext) -> str:
    targets: list[TargetBase] = list(step.wait)
    with ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix=f"{step.name}-wait") as pool:
        futures = [pool.submit(wait_for_target, t, ctx, interval=step.interval, max_interval=step.max_interval,
                               attempt_timeout=step.attempt_timeout) for t in targets]
        results = [f.result() for f in futures]
    if ctx.cancel.is_set():
        raise StepCancelled(f"step {step.name!r} stopped: the run was terminated (SIGTERM)")
    missing = [(t, r) for t, r in zip(targets, results, strict=True) if not r.ready]
    if missing:
        lines = [not_ready(t, r) for t, r in missing]
        raise StepFailed(f"{len(missing)} of {len(targets)} targets not ready:\n" + "\n".join(lines))
    return f"{len(targets)} targets ready"


def probe(step: Step, ctx: Any) -> Any:
    """Each target checked once, not waited for: not ready is reported, a problem only with ``--strict``."""
    from prefect_init.kinds.wait.loop import NotReady
    from prefect_init.runtime.probe import CHANGE, OK, PROBLEM, Finding

    waiting = []
    for target in step.wait:
        checker = target.checker(ctx)
        try:
            checker.check(max(0.1, min(step.attempt_timeout * 3, ctx.remaining())))
        except NotReady as exc:
            waiting.append(f"{target.label()}: {exc}")
        finally:
            checker.close()
    if not waiting:
        return Finding(OK, [f"{len(step.wait)} targets ready"])
    return Finding(PROBLEM if ctx.strict else CHANGE, [f"wait for {w}" for w in waiting])
