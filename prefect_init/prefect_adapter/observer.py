"""Mirror a run into the Prefect API from one background thread; never block a step, never outlive the run.

Every call is queued by the step threads (constant time, no I/O) and made by the observer's thread, in order.
The first call that fails (no answer within its timeout, a refused connection, a 5xx, a 401 or 403) marks the API
lost: from then on nothing is sent, and what was not recorded is counted for the one warning line of
:meth:`Observer.close`, whose wait is bounded too.
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prefect_init.prefect_adapter.rest import ApiLost, PrefectRest
from prefect_init.run.identity import Identity
from prefect_init.run.outcome import FAILED, SUCCEEDED, RunOutcome, StepOutcome
from prefect_init.runtime.redaction import redact
from prefect_init.spec.model import Policy

FLOW_NAME = "prefect-init"
LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40}
MAX_DRAIN = 1000
BATCHED = {"log line": "/logs/", "event": "/events"}
"""Calls whose bodies are lists and whose order does not matter: merged into one request per wake-up."""


def _iso(at: float | None = None) -> str:
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def state(kind: str, name: str, message: str | None = None, scheduled: float | None = None) -> dict[str, Any]:
    """A Prefect ``StateCreate`` body (the server stamps its time: the queue sends it within milliseconds)."""
    body: dict[str, Any] = {"type": kind, "name": name}
    if message:
        body["message"] = redact(message)
    if scheduled is not None:
        body["state_details"] = {"scheduled_time": _iso(scheduled)}
    return body


@dataclass
class _Call:
    what: str  # how it is counted when it cannot be sent: "log line", "step state", "final state", "artifact"
    method: str
    path: str
    body: Any
    count: int = 1


_STOP = _Call("stop", "", "", None)


class Observer:
    """One run's mirror. ``flow_run_id`` given: the run exists (a deployment's run, which Prefect's engine owns);
    else :meth:`start` creates it and the observer owns its states and heartbeats."""

    def __init__(self, rest: PrefectRest, spec_name: str, needs: dict[str, list[str]],
                 flow_run_id: str | None = None, heartbeat_seconds: float | None = 180.0,
                 identity: Identity | None = None) -> None:
        self.rest = rest
        self.spec_name = spec_name
        self.identity = identity or Identity()
        self.run_name = self.identity.run_name(spec_name)
        self.needs = needs
        self.flow_run_id = flow_run_id
        self.owns_flow_run = flow_run_id is None
        self.flow_id: str | None = None
        self.heartbeat_seconds = heartbeat_seconds if self.owns_flow_run else None
        self.task_runs: dict[str, str] = {}
        self.queue: queue.Queue[_Call] = queue.Queue()
        self.lost: str | None = None
        self.lost_at: float | None = None
        self.dropped: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="prefect-observer", daemon=True)

    # -- set-up: the only calls made in the caller's thread, each bounded -------------------------------------

    def start(self, parameters: dict[str, Any], tags: list[str]) -> None:
        """Create the flow run (when this observer owns it) and start the thread. Raises
        :class:`~prefect_init.prefect_adapter.rest.ApiLost` / ``ApiRefused``: then nothing was recorded."""
        if self.owns_flow_run:
            flow = self.rest.call("POST", "/flows/", {"name": FLOW_NAME})
            self.flow_id = str(flow["id"])
            run = self.rest.call("POST", "/flow_runs/", {
                "flow_id": self.flow_id, "name": self.run_name, "parameters": parameters, "tags": tags,
                "state": state("RUNNING", "Running")})
            self.flow_run_id = str(run["id"])
        self.thread.start()

    # -- what the engine reports (any thread; no I/O) ---------------------------------------------------------

    def _put(self, what: str, method: str, path: str, body: Any, count: int = 1) -> None:
        self.queue.put(_Call(what, method, path, body, count))

    def log(self, step: str | None, level: str, message: str) -> None:
        entry = {"name": "prefect.task_runs" if step else "prefect.flow_runs", "level": LEVELS.get(level, 20),
                 "message": redact(message), "timestamp": _iso(), "flow_run_id": self.flow_run_id,
                 "task_run_id": self.task_runs.get(step) if step else None}
        self._put("log line", "POST", "/logs/", [entry])

    def task_started(self, name: str, kind: str, policy: Policy) -> None:
        task_run_id = str(uuid.uuid4())
        with self._lock:
            self.task_runs[name] = task_run_id
            upstream = [self.task_runs[dep] for dep in self.needs.get(name, []) if dep in self.task_runs]
        self._put("step state", "POST", "/task_runs/", {
            "id": task_run_id, "name": name, "flow_run_id": self.flow_run_id, "task_key": f"prefect-init-{kind}",
            "dynamic_key": name, "empirical_policy": {"retries": policy.retries, "retry_delay": policy.retry_delay},
            # Prefect's wait_for: the run graph draws the spec's `after:` edges from it
            "task_inputs": {"wait_for": [{"input_type": "task_run", "id": up} for up in upstream]},
            # created running (one call, not two): the first attempt starts now
            "state": state("RUNNING", "Running")})

    def _task_state(self, name: str, body: dict[str, Any]) -> None:
        task_run_id = self.task_runs.get(name)
        if task_run_id:
            self._put("step state", "POST", f"/task_runs/{task_run_id}/set_state", {"state": body, "force": True})

    def attempt_started(self, name: str, attempt: int) -> None:
        if attempt > 1:  # the first attempt's Running state came with the task run
            self._task_state(name, state("RUNNING", "Retrying"))

    def task_retrying(self, name: str, attempt: int, delay: float, error: str) -> None:
        self._task_state(name, state("SCHEDULED", "AwaitingRetry", error, scheduled=time.time() + delay))

    def task_finished(self, outcome: StepOutcome) -> None:
        if outcome.status == SUCCEEDED:
            self._task_state(outcome.name, state("COMPLETED", "Completed"))
        elif outcome.status == FAILED:
            self._task_state(outcome.name, state("FAILED", "Failed", outcome.error))
        payload: dict[str, Any] = {"kind": outcome.kind, "attempts": outcome.attempts,
                                   "duration_s": round(outcome.duration_s, 3)}
        if outcome.error:
            payload["error"] = redact(outcome.error)
        self.event(f"prefect-init.step.{outcome.status}", f"prefect-init.step.{self.spec_name}.{outcome.name}",
                   outcome.name, payload)

    def event(self, name: str, resource_id: str, resource_name: str, payload: dict[str, Any]) -> None:
        """A Prefect event about this run (``prefect-init.step.*``, ``prefect-init.run.*``), related to the flow
        run, labelled with the spec and the pod, for automations and the event feed."""
        resource = {"prefect.resource.id": resource_id, "prefect.resource.name": resource_name,
                    "prefect-init.spec": self.spec_name}
        resource.update({f"prefect-init.{key}": value for key, value in self.identity.to_dict().items()})
        related = [{"prefect.resource.id": f"prefect.flow-run.{self.flow_run_id}", "prefect.resource.role": "flow-run",
                    "prefect.resource.name": self.run_name}]
        self._put("event", "POST", "/events", [{"id": str(uuid.uuid4()), "occurred": _iso(), "event": name,
                                                "resource": resource, "related": related, "payload": payload}])

    def finish(self, outcome: RunOutcome) -> None:
        """The final state of the flow run (when owned) first, as it matters most when time is short; then the
        run's event, the summary artifact and the closing log line."""
        if self.owns_flow_run:
            if outcome.status == SUCCEEDED:
                final = state("COMPLETED", "Completed", "All steps succeeded.")
            else:
                final = state("FAILED", "Failed", outcome.reason())
            self._put("final state", "POST", f"/flow_runs/{self.flow_run_id}/set_state",
                      {"state": final, "force": True})
        failed = outcome.first_failure()
        payload: dict[str, Any] = {"status": outcome.status, "steps": len(outcome.steps)}
        if failed is not None:
            payload.update(failed_step=failed.name, error=redact(outcome.reason()))
        self.event(f"prefect-init.run.{outcome.status}", f"prefect-init.run.{self.spec_name}", self.run_name, payload)
        self._put("artifact", "POST", "/artifacts/", {
            "key": f"prefect-init-{self.spec_name}", "type": "markdown", "data": redact(outcome.markdown()),
            "description": f"prefect-init run of {self.spec_name}: {outcome.status}",
            "flow_run_id": self.flow_run_id})
        if self.owns_flow_run:
            shown = "Completed()" if final["type"] == "COMPLETED" else f"Failed({final['message']!r})"
            self.log(None, "INFO" if final["type"] == "COMPLETED" else "ERROR", f"Finished in state {shown}")

    # -- the thread -------------------------------------------------------------------------------------------

    def _heartbeat(self) -> None:
        related = [{"prefect.resource.id": f"prefect.flow.{self.flow_id}", "prefect.resource.role": "flow",
                    "prefect.resource.name": FLOW_NAME}] if self.flow_id else []
        self._send(_Call("heartbeat", "POST", "/events", [{
            "id": str(uuid.uuid4()), "occurred": _iso(), "event": "prefect.flow-run.heartbeat",
            "resource": {"prefect.resource.id": f"prefect.flow-run.{self.flow_run_id}",
                         "prefect.resource.name": self.spec_name},
            "related": related, "payload": {}}]))

    def _loop(self) -> None:
        """Each time it wakes, the thread takes everything queued: the calls whose order matters (task runs,
        states, the artifact) go first, in order; then all the log lines in one request and all the events in
        another. The slower the API, the larger the batches, the fewer the requests."""
        interval = self.heartbeat_seconds
        next_beat = time.monotonic()
        while True:
            if interval and time.monotonic() >= next_beat:
                self._heartbeat()
                next_beat = time.monotonic() + interval
            try:
                first = self.queue.get(timeout=max(0.0, next_beat - time.monotonic()) if interval else None)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < MAX_DRAIN:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            for call in batch:
                if call is not _STOP and call.what not in BATCHED:
                    self._send(call)
            for what, path in BATCHED.items():
                items = [item for call in batch if call.what == what for item in call.body]
                if items:
                    self._send(_Call(what, "POST", path, items, len(items)))
            if any(call is _STOP for call in batch):
                return

    def _send(self, call: _Call) -> None:
        if self.lost is not None:
            self.dropped[call.what] += call.count
            return
        try:
            self.rest.call(call.method, call.path, call.body)
        except ApiLost as exc:
            self.lost, self.lost_at = str(exc), time.time()
            self.dropped[call.what] += call.count

    def close(self, budget: float) -> str | None:
        """Flush for at most ``budget`` seconds; return the one warning line if anything was not recorded."""
        self.queue.put(_STOP)
        if self.thread.is_alive():
            self.thread.join(timeout=budget)
        if self.thread.is_alive():  # a call still hangs: give up on the API and count what is left
            if self.lost is None:
                self.lost, self.lost_at = "no answer", time.time()
            while True:
                try:
                    call = self.queue.get_nowait()
                except queue.Empty:
                    break
                if call is not _STOP:
                    self.dropped[call.what] += len(call.body) if call.what in BATCHED else call.count
        else:
            self.rest.close()
        return self.warning()

    def warning(self) -> str | None:
        if self.lost is None:
            return None
        parts = []
        if self.dropped["final state"]:
            parts.append("the final state")
        for what in ("step state", "log line"):
            if self.dropped[what]:
                parts.append(f"{self.dropped[what]} {what}{'s' if self.dropped[what] > 1 else ''}")
        if self.dropped["artifact"]:
            parts.append("the summary artifact")
        if self.dropped["event"]:
            parts.append(f"{self.dropped['event']} event{'s' if self.dropped['event'] > 1 else ''}")
        when = datetime.fromtimestamp(self.lost_at or time.time(), UTC).strftime("%H:%M:%SZ")
        missing = ", ".join(parts) if parts else "heartbeats only"
        return (f"warning: the Prefect API went away at {when} ({self.lost}); the steps ran on. Not recorded in "
                f"Prefect: {missing}")
