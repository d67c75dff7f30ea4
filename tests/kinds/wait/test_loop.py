from __future__ import annotations

import random
import threading
import time

from prefect_init.kinds.wait.loop import NotReady, pauses, poll


def test_pauses_start_quick_double_with_jitter_and_hold_at_the_cap() -> None:
    next_pause = pauses(0.025, 0.25, random.Random(7))
    values = [next_pause() for _ in range(10)]
    bases = [0.025, 0.05, 0.1, 0.2]
    for value, base in zip(values, bases, strict=False):
        assert base / 2 <= value <= base
    assert values[4:] == [0.25] * 6  # at the cap: exactly the cap, so at most 4 attempts a second


def test_poll_returns_when_ready() -> None:
    calls: list[float] = []

    def check(timeout: float) -> None:
        calls.append(timeout)
        if len(calls) < 3:
            raise NotReady("not yet")

    result = poll(check, time.monotonic() + 5, threading.Event(), interval=0.01, max_interval=0.02,
                  attempt_timeout=0.5)
    assert result.ready and result.attempts == 3 and result.last_error is None
    assert all(0 < t <= 0.5 for t in calls)


def test_poll_gives_up_at_the_deadline_with_the_last_error() -> None:
    def check(timeout: float) -> None:
        raise ConnectionError("refused")

    result = poll(check, time.monotonic() + 0.3, threading.Event(), interval=0.01, max_interval=0.05,
                  attempt_timeout=1.0)
    assert not result.ready and result.attempts > 3
    assert result.last_error == "ConnectionError: refused"


def test_poll_attempt_timeout_never_passes_the_deadline() -> None:
    seen: list[float] = []

    def check(timeout: float) -> None:
        seen.append(timeout)
        raise NotReady("x")

    poll(check, time.monotonic() + 0.2, threading.Event(), interval=0.05, max_interval=0.05, attempt_timeout=10)
    assert max(seen) <= 0.2


def test_poll_stops_on_cancel() -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    started = time.monotonic()

    def check(timeout: float) -> None:
        raise NotReady("x")

    result = poll(check, time.monotonic() + 30, cancel, interval=0.05, max_interval=0.1, attempt_timeout=1)
    assert not result.ready and time.monotonic() - started < 1
