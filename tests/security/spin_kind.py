"""A step kind for tests only: it computes in pure Python and never looks at its deadline nor at SIGTERM.

The worst a kind can do to the engine (a template looping 10^10 times did it): the engine's safety net, not the
step, must end it. Registered by the ``sitecustomize`` that :func:`tests.security.test_deadlines.spin_env`
writes, so that ``python -m prefect_init.cli run`` knows ``spin:``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from prefect_init.runtime.context import RunContext
from prefect_init.spec.model import StepBase, StrictModel


class SpinSpec(StrictModel):
    seconds: float
    """How long the loop runs (by the clock only: ``ctx`` is never looked at)."""
    chatty: int = 0
    """Log a line every this many turns (0: never): a step that floods stderr while the engine ends the run."""
    in_pool: bool = False
    """Spin in a worker of a thread pool of the step's own (as ``wait`` and ``vault`` run their probes): a thread
    the interpreter joins at exit."""
    returned: str | None = None
    """A file written once the step's thread has ended: the late return has been delivered to the engine."""


class Step(StepBase):
    kind = "spin"
    spin: SpinSpec


def run(step: Step, ctx: RunContext) -> str:
    if step.spin.in_pool:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(_spin, step, ctx).result()
    return _spin(step, ctx)


def _spin(step: Step, ctx: RunContext) -> str:
    ctx.log.info("spinning")
    if step.spin.returned is not None:
        me, marker = threading.current_thread(), Path(step.spin.returned)

        def after_return() -> None:
            me.join()
            marker.write_text("returned\n")

        threading.Thread(target=after_return, daemon=True).start()
    end = time.monotonic() + step.spin.seconds
    turns = 0
    while time.monotonic() < end:
        turns += 1
        if step.spin.chatty and turns % step.spin.chatty == 0:
            ctx.log.info(f"turn {turns}")
    ctx.output("turns", turns)
    return f"spun {turns} times"
