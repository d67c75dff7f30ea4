"""One wait loop for every kind of target: quick first polls, then doubling pauses with jitter, up to a cap.

Pauses: ``interval``, ``2*interval``, ``4*interval``, ... each jittered down to between half and all of its
value, until they reach ``max_interval``; from then on every pause is exactly ``max_interval`` (so the rate at
the cap is at most ``1/max_interval`` per target, 4 per second by default). Each attempt gets its own short
timeout (``attempt_timeout``, never past the deadline), so a black-holed address cannot stall the loop.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


class NotReady(Exception):
    """A target is not ready yet; the message is its short reason (``connection refused``)."""


@dataclass
class PollResult:
    ready: bool
    attempts: int
    elapsed: float
    last_error: str | None


def pauses(interval: float, max_interval: float, rng: random.Random | None = None) -> Callable[[], float]:
    """A function giving the next pause each time it is called."""
    rand = rng or random.Random()
    state = {"next": interval}

    def next_pause() -> float:
        base = state["next"]
        state["next"] = min(max_interval, base * 2)
        return max_interval if base >= max_interval else base * rand.uniform(0.5, 1.0)

    return next_pause


def poll(check: Callable[[float], None], deadline: float, cancel: threading.Event, *, interval: float,
         max_interval: float, attempt_timeout: float, on_failure: Callable[[int, str], None] | None = None,
         ) -> PollResult:
    """Call ``check(timeout)`` until it returns (ready), the deadline passes, or ``cancel`` is set.

    ``check`` raises :class:`NotReady` (or any exception, taken as not ready) with a short reason.
    """
    started = time.monotonic()
    next_pause = pauses(interval, max_interval)
    attempts, last_error = 0, None
    while not cancel.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        attempts += 1
        try:
            check(max(0.001, min(attempt_timeout, remaining)))
            return PollResult(True, attempts, time.monotonic() - started, None)
        except NotReady as exc:
            last_error = str(exc)
        except Exception as exc:  # a checker's unexpected error: not ready, and say what it was
            last_error = f"{type(exc).__name__}: {exc}"
        if on_failure is not None:
            on_failure(attempts, last_error)
        pause = min(next_pause(), deadline - time.monotonic())
        if pause > 0 and cancel.wait(pause):
            break
    return PollResult(False, attempts, time.monotonic() - started, last_error)
