"""The observer's safeguards, each proven on its own (they overlap: with both in place, breaking either alone
went unnoticed by the end-to-end outage tests), and its patience with a slow API. The API is a real socket on
127.0.0.1 that takes requests and never answers, or answers late, and counts what reached it."""

from __future__ import annotations

import itertools
import re
import threading
import time
from http.server import BaseHTTPRequestHandler

import httpx
import pytest

from prefect_init.prefect_adapter.mirror import CLOSE_BUDGET
from prefect_init.prefect_adapter.observer import START_BUDGET, Observer
from prefect_init.prefect_adapter.rest import ApiLost, PrefectRest
from prefect_init.run.outcome import SUCCEEDED, RunOutcome, StepOutcome
from prefect_init.spec.model import Policy
from tests.httpservers import SilentServer, silent_server, slow_api
from tests.httpservers import _api_server as api_server
from tests.httpservers import _reply as reply

POLICY = Policy(timeout=10, retries=0, retry_delay=1, max_retry_delay=1)
FLOW_RUN = "00000000-0000-4000-8000-000000000001"


def observer(server: SilentServer, call_timeout: float) -> Observer:
    rest = PrefectRest(server.url, timeout=httpx.Timeout(call_timeout, connect=call_timeout))
    obs = Observer(rest, "safeguards", {}, flow_run_id=FLOW_RUN, heartbeat_seconds=None)
    obs.start({}, [])  # the flow run is given: only the thread starts, no call is made
    return obs


def bounded_close(obs: Observer, budget: float) -> str | None:
    """``obs.close(budget)`` on a thread of its own: a close that ignored its budget fails the test (after
    budget + 5 s) instead of hanging it."""
    result: list[str | None] = []
    closing = threading.Thread(target=lambda: result.append(obs.close(budget=budget)), daemon=True)
    closing.start()
    closing.join(timeout=budget + 5)
    assert result, f"close(budget={budget}) did not return within its budget + 5 s"
    return result[0]


def test_once_close_gives_up_nothing_more_is_sent() -> None:
    """A run's record goes to an API that never answers. While close's budget lasts, the observer tries again
    (the positive control: more than one request arrives); once close has returned, not one more request may
    reach the API: each would be a call from a pod that has finished."""
    with silent_server() as server:
        obs = observer(server, call_timeout=0.3)
        obs.task_started("only", "command", POLICY)
        outcome = RunOutcome("safeguards", started_at="2026-01-01T00:00:00Z")
        outcome.steps = [StepOutcome("only", "command", SUCCEEDED, attempts=1, duration_s=0.1)]
        obs.task_finished(outcome.steps[0])
        obs.finish(outcome)
        warning = bounded_close(obs, budget=1.5)
        at_close = server.count()
        # no timer to wait out: once the observer's thread has ended, nothing can be sent any more; a thread that
        # went on calling would never end (and fail here), one that ended sent all it ever will
        obs.thread.join(timeout=5)
        assert not obs.thread.is_alive(), "the observer's thread still runs after close gave up"
        after = server.count()
    lines = [bytes(r) for r in server.requests[:at_close]]
    # it tried again within the budget: one request made twice (not just the event batch and the artifact)
    assert max(lines.count(line) for line in lines) >= 2, lines
    assert after == at_close, server.requests[at_close:]
    assert warning is not None and "(no answer within 0.3 s)" in warning and "3 step states" in warning


def test_close_keeps_to_its_budget_while_a_call_hangs() -> None:
    """A call that hangs far longer than the close budget (a 10 s call timeout): close returns at its budget,
    counting the call in flight and what waited behind it, and the pod goes on."""
    with silent_server() as server:
        obs = observer(server, call_timeout=10)
        obs.task_started("hanging", "command", POLICY)
        deadline = time.monotonic() + 5
        while server.count() == 0:  # the call is in flight, and will hang
            assert time.monotonic() < deadline, "the observer never called"
            time.sleep(0.01)
        obs.log("hanging", "INFO", "queued behind the hanging call")
        started = time.monotonic()
        result: list[str | None] = []
        closing = threading.Thread(target=lambda: result.append(obs.close(budget=0.5)), daemon=True)
        closing.start()
        closing.join(timeout=5)  # a close that ignored its budget would hang the test, not fail it
        took = time.monotonic() - started
    assert result and took < 0.5 + 0.5, took
    warning = result[0]
    assert warning is not None and "2 step states" in warning and "1 log line" in warning, warning
    assert re.search(r"\(no answer within \d+\.\d s\)", warning), warning  # how long it really waited


def test_a_slow_api_is_waited_for_not_asked_again() -> None:
    """Twenty pods finishing at once made a server answer in seconds. A call that is abandoned at its timeout and
    made again doubles the load and never lands; a slow answer within close's budget must be taken, each call
    made once (the default timeouts, as a pod has them)."""
    with slow_api(delay=2.5) as api:
        obs = Observer(PrefectRest(api.url), "slow", {}, flow_run_id=FLOW_RUN, heartbeat_seconds=None)
        obs.start({}, [])
        outcome = RunOutcome("slow", started_at="2026-01-01T00:00:00Z")
        outcome.steps = [StepOutcome("only", "command", SUCCEEDED, attempts=1, duration_s=0.1)]
        obs.finish(outcome)
        warning = bounded_close(obs, budget=CLOSE_BUDGET)
    assert warning is None, warning
    assert sorted(api.calls) == sorted(set(api.calls)) and len(api.calls) == 2, api.calls  # an event, the artifact


def test_creating_the_flow_run_keeps_to_the_start_budget() -> None:
    """The start is the one moment a pod waits for the API: an API that takes the call and never answers costs at
    most the start's budget, however long one call's own timeout is."""
    with silent_server() as server:
        obs = Observer(PrefectRest(server.url), "start", {}, heartbeat_seconds=None)
        started = time.monotonic()
        with pytest.raises(ApiLost):
            obs.start({}, [])
        took = time.monotonic() - started
    assert START_BUDGET - 0.5 < took < START_BUDGET + 0.5, took


def test_heartbeats_keep_coming_while_the_run_lasts() -> None:
    """A run that owns its flow run (``prefect-init run``, not a deployment's) beats for as long as it runs: the
    zombie automation marks a run whose heartbeats stop as Crashed. Three beats must arrive, not one."""
    beats: list[float] = []

    def answer(handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        if handler.path.endswith("/events") and b"prefect.flow-run.heartbeat" in body:
            beats.append(time.monotonic())
        reply(handler, 201, b'{"id": "00000000-0000-4000-8000-0000000000aa"}')

    httpd, url = api_server(answer)
    try:
        obs = Observer(PrefectRest(url), "beating", {}, heartbeat_seconds=0.2)
        obs.start({}, [])
        deadline = time.monotonic() + 10
        while len(beats) < 3:  # a bound, not a window: three beats come within 0.6 s on a healthy observer
            assert time.monotonic() < deadline, f"{len(beats)} heartbeat(s) in 10 s, every 0.2 s expected"
            time.sleep(0.05)
        outcome = RunOutcome("beating", started_at="2026-01-01T00:00:00Z")
        obs.finish(outcome)
        assert bounded_close(obs, budget=CLOSE_BUDGET) is None
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert all(b - a < 2 for a, b in itertools.pairwise(beats[:3])), beats
