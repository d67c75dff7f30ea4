"""Mirror a run into the Prefect API from one background thread; never block a step, never outlive the run.

Every call is queued by the step threads (constant time, no I/O) and made by the observer's thread, in order.
Task runs are recorded as Prefect 3's own engine records them: as ``prefect.task-run.<State>`` events, which the
server's task run recorder turns into task runs and their states, with the pod's own timestamps. So the steps of
a wake-up travel in one ``POST /events`` with the run's other events, a repeated event (same id) records nothing
twice, and automations on ``prefect.task-run.*`` see every step.
A call the API does not take (no answer within its timeout, a refused connection, a 5xx, a 429) is tried again
with back-off, in order, for as long as the steps run: a server restarted mid-run loses nothing. After the last
step, :meth:`Observer.close` waits at most its budget, then gives up; what was not recorded is counted for its one
warning line. A 401 or 403 ends the mirror at once; another 4xx refuses that call only, and the line names it.
An answer that is not the API's (an HTML page of an SSO proxy, a redirect, an id that is not a UUID) ends it at
once too, at the start (the steps run unrecorded) or mid-run (an SSO session that expired).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from prefect_init.prefect_adapter.rest import ApiLost, ApiRefused, ApiRejected, ApiWrong, PrefectRest
from prefect_init.run.identity import Identity
from prefect_init.run.outcome import FAILED, SKIPPED, SUCCEEDED, RunOutcome, StepOutcome
from prefect_init.runtime.redaction import redact
from prefect_init.spec.model import Policy

FLOW_NAME = "prefect-init"
LEVELS = {"DEBUG": 10, "INFO": 20, "WARN": 30, "WARNING": 30, "ERROR": 40}
MAX_DRAIN = 1000
START_BUDGET = 4.0
"""Creating the flow run (before the first step) is tried again for this long while the API is slow or away (a
rollout's pods all start at once); then the run goes on locally, or exits 1 with ``--require-api``."""
MAX_QUEUED = 20_000
"""Calls waiting for an API that is away; past this, new ones are counted as not recorded (a pod's memory)."""
RETRY_FIRST = 0.25
RETRY_CAP = 2.0
"""A call the API did not take is tried again after 0.25 s, then 0.5, 1, 2, 2 ... (or as long as a 429's
Retry-After asks, up to the cap), while the steps run and for :meth:`Observer.close`'s budget after them."""
MAX_BODY = 4 * 1024 * 1024
"""A batch's body is at most this many bytes of JSON: Prefect Cloud refuses a body above 5 MiB (HTTP 413), and a
busy self-hosted server takes smaller requests sooner. A larger batch goes as several requests."""
MAX_LOG_MESSAGE = 1_000_000
"""A log line longer than this (characters) is cut, as Prefect's own API log handler refuses one
(``PREFECT_LOGGING_TO_API_MAX_LOG_SIZE``, 1,000,000); the pod's stderr keeps it whole."""
BATCHED = ("/logs/", "/events")
"""Paths whose bodies are lists and whose order does not matter: merged into one request per wake-up."""
NOT_READY = "Upstream task run '{}' did not reach a 'COMPLETED' state."
"""The message of Prefect's engine for a task whose upstream failed (its state: Pending, named NotReady)."""


def _iso(at: float | None = None) -> str:
    moment = datetime.now(UTC) if at is None else datetime.fromtimestamp(at, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _iso_us(microseconds: int) -> str:
    """A time given in whole microseconds since the epoch, exactly (a float loses the last one)."""
    moment = datetime.fromtimestamp(microseconds // 1_000_000, UTC).replace(microsecond=microseconds % 1_000_000)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


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
    parts: list[_Call] | None = None
    """A batch's calls, each counted as what it is if the batch is not recorded."""
    sent_at: float = 0.0
    """When it was last sent (``time.monotonic``): how long a call in flight has waited for its answer."""


_STOP = _Call("stop", "", "", None)


@dataclass
class _TaskRun:
    """What the events say of one step's task run (``payload.task_run``), kept between its states."""

    id: str
    name: str
    kind: str
    retries: int
    upstream: list[str]
    expected_start: float
    run_count: int = 0
    start: float | None = None
    end: float | None = None
    state: dict[str, Any] | None = None
    last_us: int = 0
    """The last state's time in whole microseconds: the server keeps one state per task run and timestamp."""


def _shape(value: Any) -> str:
    """What a JSON value is, in words (never its text: it came from a server that is not the API)."""
    if isinstance(value, dict):
        if not value:
            return "an empty object"
        return "an object without an \"id\"" if "id" not in value else "an \"id\" that is not a UUID"
    if value is None:
        return "an empty body"
    return {list: "a list", str: "a string", bool: "true or false", int: "a number", float: "a number"}.get(
        type(value), "another value")


def id_of(answer: Any, what: str, where: str) -> str:
    """The ``id`` of what the API created, checked: a UUID, as Prefect's ids are (it goes into the paths of later
    calls: never a value that could steer one). Else :class:`ApiWrong`, naming the answer's shape."""
    value = answer.get("id") if isinstance(answer, dict) else None
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise ApiWrong(f"answered {where} without {what} id ({_shape(answer)}), not as Prefect's API does")


def _chunks(calls: list[_Call], limit: int) -> list[list[_Call]]:
    """``calls`` (each a list body) in order, grouped so that each group's items make a JSON list of at most
    ``limit`` bytes (a call larger than that alone: its own request)."""
    chunks: list[list[_Call]] = []
    size = limit + 1
    for call in calls:
        length = sum(len(json.dumps(item, separators=(",", ":")).encode()) + 2 for item in call.body)
        if not chunks or size + length > limit:
            chunks.append([])
            size = 2
        chunks[-1].append(call)
        size += length
    return chunks


class Observer:
    """One run's mirror. ``flow_run_id`` given: the run exists (a deployment's run, which Prefect's engine owns);
    else :meth:`start` creates it and the observer owns its states and heartbeats."""

    def __init__(self, rest: PrefectRest, spec_name: str, needs: dict[str, list[str]],
                 flow_run_id: str | None = None, heartbeat_seconds: float | None = 180.0,
                 identity: Identity | None = None, log_level: int = 0) -> None:
        self.rest = rest
        self.spec_name = spec_name
        self.identity = identity or Identity()
        self.run_name = self.identity.run_name(spec_name)
        self.needs = needs
        self.flow_run_id = flow_run_id
        self.owns_flow_run = flow_run_id is None
        self.flow_id: str | None = None
        self.heartbeat_seconds = heartbeat_seconds if self.owns_flow_run else None
        self.log_level = log_level
        """Log lines below this level are not sent (``PREFECT_INIT_API_LOG_LEVEL``); stderr keeps every line."""
        self.sent: Counter[str] = Counter()
        """What reached the API: ``requests``, ``log lines``, ``events`` (a Cloud tier counts the last two
        together, one by one, and every request)."""
        self.task_runs: dict[str, str] = {}
        self.records: dict[str, _TaskRun] = {}
        self.tags: list[str] = []
        self.queue: queue.Queue[_Call] = queue.Queue()
        self.lost: str | None = None
        self.lost_at: float | None = None
        self.dropped: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.away: tuple[str, float] | None = None
        """Why and since when the API has not taken a call (kept while calls are tried again)."""
        self.in_flight: list[_Call] = []
        self.gave_up = threading.Event()
        self.closing = threading.Event()
        """Set by :meth:`close`: what is still to send goes at once."""
        self._lock = threading.RLock()
        self.thread = threading.Thread(target=self._loop, name="prefect-observer", daemon=True)

    # -- set-up: the only calls made in the caller's thread, each bounded -------------------------------------

    def start(self, parameters: dict[str, Any], tags: list[str]) -> None:
        """Create the flow run (when this observer owns it) and start the thread. Raises
        :class:`~prefect_init.prefect_adapter.rest.ApiLost` / ``ApiRefused``: then nothing was recorded.
        ``tags`` are the flow run's, and its task runs' (as Prefect's engine tags a flow's task runs)."""
        self.tags = list(tags)
        if self.owns_flow_run:
            deadline = time.monotonic() + START_BUDGET
            flow = self._call_by(deadline, "POST", "/flows/", {"name": FLOW_NAME})
            self.flow_id = id_of(flow, "a flow's", "POST /flows/")
            run = self._call_by(deadline, "POST", "/flow_runs/", {
                "flow_id": self.flow_id, "name": self.run_name, "parameters": parameters, "tags": tags,
                # the same key made again returns the same run: a call that timed out and is repeated
                # creates no second run
                "idempotency_key": str(uuid.uuid4()), "state": state("PENDING", "Pending")})
            self.flow_run_id = id_of(run, "a flow run's", "POST /flow_runs/")
            # Pending, then Running, as Prefect's engine moves a flow run (and as automations on
            # prefect.flow-run.Pending expect); the observer's thread sends it first
            self._put("flow state", "POST", f"/flow_runs/{self.flow_run_id}/set_state",
                      {"state": state("RUNNING", "Running"), "force": True})
            self.log(None, "INFO", f"Beginning flow run {self.run_name!r} for flow {FLOW_NAME!r}")
        self.thread.start()

    def _call_by(self, deadline: float, method: str, path: str, body: Any) -> Any:
        """A call of the start, tried again with back-off while the API is slow or away, until ``deadline``."""
        pause = RETRY_FIRST
        while True:
            try:  # each try bounded by what is left of the start's budget
                return self.rest.call(method, path, body, timeout=max(0.1, deadline - time.monotonic()))
            except (ApiRefused, ApiRejected, ApiWrong):  # asked again, it would answer the same
                raise
            except ApiLost as exc:
                wait = max(pause, exc.retry_after or 0.0)
                if time.monotonic() + wait >= deadline:
                    raise
                time.sleep(wait)
                pause = min(RETRY_CAP, pause * 2)

    # -- what the engine reports (any thread; no I/O) ---------------------------------------------------------

    def _put(self, what: str, method: str, path: str, body: Any, count: int = 1) -> None:
        call = _Call(what, method, path, body, count)
        if self.queue.qsize() >= MAX_QUEUED:  # the API has been away long: keep the pod's memory bounded
            self._drop(call)
        else:
            self.queue.put(call)

    def log(self, step: str | None, level: str, message: str) -> None:
        number = LEVELS.get(level, 20)
        if number < self.log_level:
            return
        if len(message) > MAX_LOG_MESSAGE:
            message = message[:MAX_LOG_MESSAGE] + f" ... (cut: {len(message)} characters; stderr has it whole)"
        entry = {"name": "prefect.task_runs" if step else "prefect.flow_runs", "level": number,
                 "message": redact(message), "timestamp": _iso(), "flow_run_id": self.flow_run_id,
                 "task_run_id": self.task_runs.get(step) if step else None}
        self._put("log line", "POST", "/logs/", [entry])

    def task_started(self, name: str, kind: str, policy: Policy) -> None:
        now = time.time()
        with self._lock:
            record = _TaskRun(str(uuid.uuid4()), name, kind, policy.retries, [], now)
            self.task_runs[name] = record.id
            self.records[name] = record
            # Prefect's wait_for: the run graph draws the spec's `after:` edges from it
            record.upstream = [self.task_runs[dep] for dep in self.needs.get(name, []) if dep in self.task_runs]
            self._task_state(record, "PENDING", "Pending", at=now)
            record.run_count, record.start = 1, now
            self._task_state(record, "RUNNING", "Running", at=now)

    def attempt_started(self, name: str, attempt: int) -> None:
        if attempt > 1:  # the first attempt's Running state came with the task run
            with self._lock:
                record = self.records.get(name)
                if record:
                    record.run_count = attempt
                    self._task_state(record, "RUNNING", "Retrying")

    def task_retrying(self, name: str, attempt: int, delay: float, error: str) -> None:
        with self._lock:
            record = self.records.get(name)
            if record:
                self._task_state(record, "SCHEDULED", "AwaitingRetry", error, scheduled=time.time() + delay)

    def task_finished(self, outcome: StepOutcome) -> None:
        with self._lock:
            record = self.records.get(outcome.name)
            not_ready = None
            if outcome.status == SKIPPED and record is None:
                # as Prefect's engine leaves a task whose upstream failed: a task run, Pending, then NotReady
                now = time.time()
                record = _TaskRun(str(uuid.uuid4()), outcome.name, outcome.kind, 0, [], now)
                self.task_runs[outcome.name] = record.id
                self.records[outcome.name] = record
                needs = self.needs.get(outcome.name, [])
                record.upstream = [self.task_runs[dep] for dep in needs if dep in self.task_runs]
                failed = next((dep for dep in needs if self._failed(dep)), needs[0] if needs else outcome.name)
                not_ready = NOT_READY.format(failed)
                self._task_state(record, "PENDING", "Pending", at=now)
                self._task_state(record, "PENDING", "NotReady", not_ready, at=now)
            elif record is not None and outcome.status in (SUCCEEDED, FAILED):
                record.end = time.time()
                if outcome.status == SUCCEEDED:
                    self._task_state(record, "COMPLETED", "Completed", at=record.end)
                else:
                    self._task_state(record, "FAILED", "Failed", outcome.error, at=record.end)
        # each task run's last line, as Prefect's engine logs it: INFO when it completed, ERROR otherwise
        if outcome.status == SUCCEEDED:
            self.log(outcome.name, "INFO", "Finished in state Completed()")
        elif outcome.status == FAILED and outcome.error:
            self.log(outcome.name, "ERROR", f"Finished in state Failed({outcome.error!r})")
        elif not_ready:
            self.log(outcome.name, "ERROR", f"Finished in state NotReady({not_ready!r}, type=PENDING)")
        payload: dict[str, Any] = {"kind": outcome.kind, "attempts": outcome.attempts,
                                   "duration_s": round(outcome.duration_s, 3)}
        if outcome.error:
            payload["error"] = redact(outcome.error)
        if outcome.optional:
            payload["optional"] = True
        self.event(f"prefect-init.step.{outcome.status}", f"prefect-init.step.{self.spec_name}.{outcome.name}",
                   outcome.name, payload)

    def _failed(self, name: str) -> bool:
        record = self.records.get(name)
        return record is not None and (record.state or {}).get("type") in ("FAILED", "PENDING")

    def _task_state(self, record: _TaskRun, kind: str, name: str, message: str | None = None,
                    scheduled: float | None = None, at: float | None = None) -> None:
        """Queue the event of one task-run state, as ``emit_task_run_state_change_event`` writes it (the
        caller holds the lock). The state's id is the event's: a repeated event records nothing twice."""
        # strictly later than the task run's last state, in the microseconds the server stores: it keeps a state
        # only if its timestamp is newer, and refuses two of one task run at the same time
        record.last_us = max(round((time.time() if at is None else at) * 1e6), record.last_us + 1)
        at = record.last_us / 1e6
        stamp = _iso_us(record.last_us)
        validated: dict[str, Any] = {"type": kind, "name": name, "message": redact(message) if message else None,
                                     "state_details": {"scheduled_time": _iso(scheduled)} if scheduled else {},
                                     "data": None}
        task_run: dict[str, Any] = {
            "name": record.name, "task_key": f"prefect-init-{record.kind}", "dynamic_key": record.name,
            "empirical_policy": {"retries": record.retries}, "tags": self.tags,
            "task_inputs": {"wait_for": [{"input_type": "task_run", "id": up} for up in record.upstream]}
            if record.upstream else {},
            "run_count": record.run_count, "flow_run_run_count": 1,
            "expected_start_time": _iso(record.expected_start)}
        if record.start is not None:
            task_run["start_time"] = _iso(record.start)
            task_run["total_run_time"] = round((record.end or at) - record.start, 6)
        if record.end is not None:
            task_run["end_time"] = _iso(record.end)
        previous = record.state
        record.state = validated
        resource = {"prefect.resource.id": f"prefect.task-run.{record.id}", "prefect.resource.name": record.name,
                    "prefect.run-count": str(record.run_count), "prefect.state-message": validated["message"] or "",
                    "prefect.state-name": name, "prefect.state-timestamp": stamp, "prefect.state-type": kind,
                    "prefect.orchestration": "client"}
        related = [{"prefect.resource.id": f"prefect.flow-run.{self.flow_run_id}", "prefect.resource.role": "flow-run",
                    "prefect.resource.name": self.run_name}]
        if self.flow_id:
            related.append({"prefect.resource.id": f"prefect.flow.{self.flow_id}", "prefect.resource.role": "flow",
                            "prefect.resource.name": FLOW_NAME})
        related += [{"prefect.resource.id": f"prefect.tag.{tag}", "prefect.resource.role": "tag"}
                    for tag in sorted(self.tags)]
        self._put("step state", "POST", "/events", [{
            "id": str(uuid.uuid4()), "occurred": stamp, "event": f"prefect.task-run.{name}",
            "resource": resource, "related": related,
            "payload": {"intended": {"from": previous["type"] if previous else None, "to": kind},
                        "initial_state": previous, "validated_state": validated, "task_run": task_run}}])

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
        run's event, the summary artifact and the closing log line. A run whose failed steps are all optional is
        Completed, its message naming them (their task runs stay Failed)."""
        if self.owns_flow_run:
            if outcome.status == SUCCEEDED:
                final = state("COMPLETED", "Completed", outcome.completed_message())
            else:
                final = state("FAILED", "Failed", outcome.reason())
            self._put("final state", "POST", f"/flow_runs/{self.flow_run_id}/set_state",
                      {"state": final, "force": True})
        failed = outcome.first_failure() if outcome.status == FAILED else None
        payload: dict[str, Any] = {"status": outcome.status, "steps": len(outcome.steps)}
        if failed is not None:
            payload.update(failed_step=failed.name, error=redact(outcome.reason()))
        optional = [s.name for s in outcome.optional_failures()]
        if optional:
            payload["optional_failed"] = optional
        self.event(f"prefect-init.run.{outcome.status}", f"prefect-init.run.{self.spec_name}", self.run_name, payload)
        self._put("artifact", "POST", "/artifacts/", {
            "key": f"prefect-init-{self.spec_name}", "type": "markdown", "data": redact(outcome.markdown()),
            "description": f"prefect-init run of {self.spec_name}: {outcome.status}",
            "flow_run_id": self.flow_run_id})
        if self.owns_flow_run:
            shown = f"Failed({final['message']!r})"
            if final["type"] == "COMPLETED":  # as Prefect's engine shows a state: its message only when it has one
                shown = f"Completed({final['message']!r})" if outcome.optional_failures() else "Completed()"
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
        """Each time it wakes, the thread takes everything queued: the flow run's final state first; then all the
        events (the task runs' states among them) in one request and all the log lines in another; the artifact
        last. The slower the API, the larger the batches, the fewer the requests."""
        interval = self.heartbeat_seconds
        next_beat = time.monotonic()
        if self.owns_flow_run:
            # the flow run's Running state (queued first by start) before the first heartbeat, as Prefect's engine
            # orders them: the zombie automation waits, after a heartbeat, for the next prefect.flow-run.* event,
            # and a Running event after the first heartbeat would end that wait before a lost pod's silence began
            self._send_each([self.queue.get()])
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
            calls = [call for call in batch if call is not _STOP]
            groups: list[Callable[[], object]] = [
                partial(self._send_each, [c for c in calls if c.path not in BATCHED and c.what != "artifact"])]
            for path in BATCHED:
                items = [call for call in calls if call.path == path]
                if items:
                    groups.append(partial(self._send_batch, path, items))
            groups.append(partial(self._send_each, [call for call in calls if call.what == "artifact"]))
            self._send_groups(groups)
            if len(calls) < len(batch):  # close was called and all it left is sent (or given up)
                return

    def _send_groups(self, groups: list[Callable[[], object]]) -> None:
        """The groups in order, each after the one before, until :meth:`close` is called: then those left go at
        once, one connection a group, so the pod waits for the slowest call rather than for all of them in turn,
        whether the thread took the run's last calls before close was called or after."""
        senders = []
        for group in groups:
            sender = threading.Thread(target=group, name="prefect-observer-send", daemon=True)
            sender.start()
            senders.append(sender)
            while sender.is_alive() and not self.closing.is_set():
                sender.join(0.05)
        for sender in senders:
            sender.join()

    def _send(self, call: _Call) -> bool:
        """Make one call, and try it again with back-off while the API is away (no answer, refused, 5xx, 429),
        until it is recorded or :meth:`close` gives up. A 401/403 ends the mirror; another 4xx refuses this
        call only. A call made again is safe to repeat, but for log lines: events carry their id, the final state is
        forced, the flow run has an idempotency key; a log line whose call timed out may be recorded twice."""
        pause = RETRY_FIRST
        while True:
            if self.lost is not None or self.gave_up.is_set():
                self._drop(call)
                return False
            with self._lock:
                call.sent_at = time.monotonic()
                self.in_flight.append(call)
            try:
                self.rest.call(call.method, call.path, call.body, answer=False)
                self.away = None
                self._count_sent(call)
                return True
            except (ApiRefused, ApiWrong) as exc:  # a login page mid-run: an SSO session that expired
                self._lose(str(exc))
            except ApiRejected as exc:
                with self._lock:  # a refused batch: each of its calls counted as what it is
                    for part in call.parts or [call]:
                        self.rejected[f"{part.what} (HTTP {exc.status} on {call.method} {call.path.split('?')[0]})"
                                      ] += part.count
                return False
            except ApiLost as exc:
                self.away = self.away or (str(exc), time.time())
                if self.gave_up.wait(min(RETRY_CAP, max(pause, exc.retry_after or 0.0))):
                    continue
                pause = min(RETRY_CAP, pause * 2)
            finally:
                with self._lock:
                    self.in_flight.remove(call)

    def _count_sent(self, call: _Call) -> None:
        with self._lock:
            self.sent["requests"] += 1
            if call.path in BATCHED:
                self.sent["log lines" if call.path == "/logs/" else "events"] += len(call.body)

    def _send_each(self, calls: list[_Call]) -> None:
        for call in calls:
            self._send(call)

    def _lose(self, reason: str) -> None:
        if self.lost is None:
            self.lost, self.lost_at = reason, time.time()

    def _drop(self, call: _Call) -> None:
        with self._lock:
            self.dropped[call.what] += call.count

    def _send_batch(self, path: str, calls: list[_Call]) -> None:
        """One request for every item queued for ``path`` (several when their JSON exceeds :data:`MAX_BODY`);
        what was not sent is counted by what each item was."""
        for chunk in _chunks(calls, MAX_BODY):
            items = [item for call in chunk for item in call.body]
            if not self._send(_Call("batch", "POST", path, items, 0, parts=chunk)):
                with self._lock:
                    for call in chunk:
                        self.dropped[call.what] += call.count

    def close(self, budget: float) -> str | None:
        """Flush for at most ``budget`` seconds, calls made again included; then give up: no request is made
        after this returns. Return the one warning line if anything was not recorded."""
        self.closing.set()
        self.queue.put(_STOP)
        if self.thread.is_alive():
            self.thread.join(timeout=budget)
        if self.thread.is_alive():  # the API is away or slow: give up and count what is left
            self.gave_up.set()
            with self._lock:
                if self.away:
                    self._lose(self.away[0])
                    self.lost_at = self.away[1]
                else:  # the first call the API did not answer is still in flight
                    oldest = min((call.sent_at for call in self.in_flight), default=time.monotonic())
                    self._lose(f"no answer within {time.monotonic() - oldest:.1f} s")
                    self.lost_at = time.time() - (time.monotonic() - oldest)
                for call in [part for flying in self.in_flight for part in flying.parts or [flying]]:
                    if call.what != "heartbeat":  # in flight: it may not have been recorded
                        self.dropped[call.what] += call.count
                while True:
                    try:
                        call = self.queue.get_nowait()
                    except queue.Empty:
                        break
                    if call is not _STOP:
                        self.dropped[call.what] += call.count
                self.queue.put(_STOP)  # a thread that had not taken it yet ends when its calls are dropped
        else:
            self.rest.close()
        return self.warning()

    def warning(self) -> str | None:
        refused = "; ".join(f"{count} {what}" for what, count in self.rejected.items())
        if self.lost is None:
            return f"warning: the Prefect API refused part of the record: {refused}" if refused else None
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
        line = (f"warning: the Prefect API went away at {when} ({self.lost}); the steps ran on. Not recorded in "
                f"Prefect: {missing}")
        return f"{line}; refused: {refused}" if refused else line
