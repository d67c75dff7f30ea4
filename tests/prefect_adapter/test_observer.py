"""The observer's two safeguards, each proven on its own (they overlap: with both in place, breaking either alone
went unnoticed by the end-to-end outage tests). The API is a real socket on 127.0.0.1 that takes requests and
never answers, and counts what reached it."""

from __future__ import annotations

import time

import httpx

from prefect_init.prefect_adapter.observer import Observer
from prefect_init.prefect_adapter.rest import PrefectRest
from prefect_init.spec.model import Policy
from tests.httpservers import SilentServer, silent_server

POLICY = Policy(timeout=10, retries=0, retry_delay=1, max_retry_delay=1)
FLOW_RUN = "00000000-0000-4000-8000-000000000001"


def observer(server: SilentServer, call_timeout: float) -> Observer:
    rest = PrefectRest(server.url, timeout=httpx.Timeout(call_timeout, connect=call_timeout))
    obs = Observer(rest, "safeguards", {}, flow_run_id=FLOW_RUN, heartbeat_seconds=None)
    obs.start({}, [])  # the flow run is given: only the thread starts, no call is made
    return obs


def test_once_the_api_is_lost_nothing_more_is_sent() -> None:
    """Five step states queued; the first call gets no answer in time. The API must see that one request and
    no other: each further call would cost a pod one more timeout."""
    with silent_server() as server:
        obs = observer(server, call_timeout=0.3)
        for n in range(5):
            obs.task_started(f"step-{n}", "command", POLICY)
        warning = obs.close(budget=10)
        time.sleep(0.2)  # a request sent at the last moment has time to arrive
        assert server.count() == 1, server.requests  # positive control: the first one did arrive
    assert warning is not None and "(no answer within 2 s)" in warning and "5 step states" in warning


def test_close_keeps_to_its_budget_while_a_call_hangs() -> None:
    """A call that hangs far longer than the close budget (a 10 s call timeout): close returns at its budget,
    counting what it could not send, and the pod goes on."""
    with silent_server() as server:
        obs = observer(server, call_timeout=10)
        obs.task_started("hanging", "command", POLICY)
        deadline = time.monotonic() + 5
        while server.count() == 0:  # the call is in flight, and will hang
            assert time.monotonic() < deadline, "the observer never called"
            time.sleep(0.01)
        obs.log("hanging", "INFO", "queued behind the hanging call")
        started = time.monotonic()
        warning = obs.close(budget=0.5)
        took = time.monotonic() - started
    assert took < 0.5 + 0.5, took
    assert warning is not None and "1 log line" in warning
