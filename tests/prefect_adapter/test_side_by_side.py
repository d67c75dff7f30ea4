"""A mirrored run beside the same DAG run by Prefect's own engine, on one real `prefect server start`, compared
field by field: what a Prefect user sees of a run (its states, its task runs, their states, run counts, edges,
tags, times, events, the ERROR lines of failed tasks) is the same; what differs is listed in docs/how-it-works/record.md
("Beside a run of Prefect's own engine") with the reason, and asserted here as it is."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import PrefectServer
from tests.helpers import run_cli, write_spec
from tests.prefectserver import settled_task_runs

ROOT = Path(__file__).resolve().parents[2]


def _spec(tmp_path: Path, name: str) -> Path:
    marker = tmp_path / f"{name}.marker"
    return write_spec(tmp_path, f"""
        version: 1
        name: {name}
        tags: [team-a]
        defaults: {{retries: 0}}
        steps:
          - name: prepare
            command: [echo, prepared]
          - name: flaky
            after: [prepare]
            retries: 1
            retry_delay: 100ms
            command: [sh, -c, "if [ -f {marker} ]; then echo second attempt; else touch {marker}; exit 1; fi"]
          - name: broken
            after: [prepare]
            command: [sh, -c, "exit 3"]
          - name: never
            after: [broken]
            command: [echo, never]
    """)


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _events(server: PrefectServer, resources: list[str], expect: set[str], limit: float = 30) -> set[str]:
    """The names of the events about these resources, once ``expect`` are among them."""
    deadline = time.monotonic() + limit
    while True:
        names: set[str] = set()
        for start in range(0, len(resources), 10):
            page = server.post("/events/filter", {"limit": 50, "filter": {
                "any_resource": {"id": resources[start:start + 10]}, "occurred": {"since": "2020-01-01T00:00:00Z"}}})
            names |= {event["event"] for event in page["events"]}  # type: ignore[call-overload]
        if expect <= names or time.monotonic() > deadline:
            return names
        time.sleep(0.3)


def _record(server: PrefectServer, flow_run: dict[str, Any], base: dict[str, str],
            expect: frozenset[str] = frozenset()) -> dict[str, Any]:
    """What a Prefect user sees of a flow run, keyed by the task's name (``base``: task run name -> task)."""
    tasks = settled_task_runs(server.api_url, [flow_run["id"]], 4)
    ids = {t["id"]: base[t["name"]] for t in tasks}
    logs: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while not any(e["task_run_id"] is None and e["message"].startswith("Finished in state") for e in logs):
        assert time.monotonic() < deadline, logs
        time.sleep(0.3)
        logs = server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run["id"]]}}, "limit": 200})
    out: dict[str, Any] = {
        "flow run": [s["type"] for s in sorted(server.get(f"/flow_run_states/?flow_run_id={flow_run['id']}"),
                                               key=lambda s: s["timestamp"])],
        "flow run tags": sorted(flow_run["tags"]),
        "flow run lines": [(e["level"], e["message"].split(" ")[0]) for e in logs if e["task_run_id"] is None],
        "tasks": {}}
    for task in tasks:
        name = ids[task["id"]]
        states = sorted(server.get(f"/task_run_states/?task_run_id={task['id']}"), key=lambda s: s["timestamp"])
        lines = [e for e in logs if e["task_run_id"] == task["id"]]
        start = _time(task["start_time"]) if task["start_time"] else None
        out["tasks"][name] = {
            "states": [(s["type"], s["name"]) for s in states],
            "run count": task["run_count"],
            "wait_for": sorted(ids[i["id"]] for i in task["task_inputs"].get("wait_for", [])),
            "tags": sorted(task["tags"]),
            "timed": (start is not None, task["end_time"] is not None, task["total_run_time"] > 0),
            # the pod's own times: no line of a task run comes before its start
            "lines before its start": sum(1 for e in lines if start is not None and _time(e["timestamp"]) < start),
            "last line": (lines[-1]["level"], lines[-1]["message"].split("(")[0]) if lines else None,
            "errors": sum(1 for e in lines if e["level"] >= 40 and e["message"].startswith("Finished in state")),
        }
    resources = [f"prefect.flow-run.{flow_run['id']}", *(f"prefect.task-run.{t['id']}" for t in tasks)]
    names = _events(server, resources, {"prefect.task-run.Failed", "prefect.flow-run.Failed", *expect})
    out["events"] = sorted(n for n in names if n.startswith(("prefect.task-run.", "prefect.flow-run."))
                           and n != "prefect.flow-run.heartbeat")
    out["other events"] = sorted(n for n in names if not n.startswith(("prefect.task-run.", "prefect.flow-run.")))
    return out


def test_a_mirrored_run_is_recorded_as_prefects_engine_records_the_same_dag(
        prefect_server: PrefectServer, tmp_path: Path) -> None:
    reference_name = f"reference-{uuid.uuid4().hex[:6]}"
    engine = subprocess.run([sys.executable, "-m", "tests.prefect_adapter.reference_flow", reference_name,
                             str(tmp_path / "reference.marker")], cwd=ROOT, capture_output=True, text=True,
                            env=prefect_server.client_env(), timeout=120)
    assert "Finished in state Failed('1/4 states failed.')" in engine.stderr, engine.stderr[-3000:]
    name = f"mirror-{uuid.uuid4().hex[:6]}"
    mirrored = run_cli("run", str(_spec(tmp_path, name)), "--require-api", env=prefect_server.client_env())
    assert mirrored.code == 1, mirrored.output

    reference_run = prefect_server.flow_run_named(reference_name)
    mirror_run = prefect_server.flow_run_named(name)
    # Prefect's engine names a task run after its task and the first characters of its dynamic key ("prepare-3f2"); a
    # step's task run is named after the step, unique in its spec
    reference_tasks = settled_task_runs(prefect_server.api_url, [reference_run["id"]], 4)
    reference = _record(prefect_server, reference_run, {t["name"]: t["name"].rsplit("-", 1)[0]
                                                        for t in reference_tasks})
    mirror = _record(prefect_server, mirror_run, {step: step for step in ("prepare", "flaky", "broken", "never")},
                     expect=frozenset({"prefect.artifact-collection.created", "prefect-init.run.failed"}))
    assert all(t["name"] == f"{t['name'].rsplit('-', 1)[0]}-{t['dynamic_key'][:3]}" for t in reference_tasks)

    # the differences, each as docs/how-it-works/record.md says: the mirror's tags add prefect-init's own ...
    for record in (reference, mirror):
        for task in record["tasks"].values():
            task["tags"] = [tag for tag in task["tags"] if tag not in ("prefect-init", f"spec:{name}")]
    assert mirror.pop("flow run tags") == ["prefect-init", f"spec:{name}", "team-a"]
    assert reference.pop("flow run tags") == ["team-a"]
    # ... the mirror adds its own events (steps and run, for automations on a spec) and the summary artifact's
    assert reference.pop("other events") == []
    assert mirror.pop("other events") == ["prefect-init.run.failed", "prefect-init.step.failed",
                                          "prefect-init.step.skipped", "prefect-init.step.succeeded",
                                          "prefect.artifact-collection.created"]
    # ... and the flow run's last line is an ERROR, as Prefect's engine logs a flow that raised (the reference
    # returns its failed states instead, which the engine logs at INFO)
    assert reference.pop("flow run lines") == [(20, "Beginning"), (20, "Finished")]
    assert mirror.pop("flow run lines") == [(20, "Beginning"), (40, "Finished")]

    assert json.dumps(mirror, indent=1, sort_keys=True) == json.dumps(reference, indent=1, sort_keys=True)
    assert mirror["tasks"]["never"]["states"] == [("PENDING", "Pending"), ("PENDING", "NotReady")]
    assert mirror["tasks"]["broken"]["errors"] == 1 and mirror["tasks"]["flaky"]["run count"] == 2
    assert "prefect.task-run.Failed" in mirror["events"] and "prefect.flow-run.Pending" in mirror["events"]


def test_an_automation_on_a_failed_task_run_fires_for_a_mirrored_failed_step(
        prefect_server: PrefectServer, tmp_path: Path) -> None:
    """An automation written for Prefect's engine (``prefect.task-run.Failed``, here of the runs tagged with the
    spec's tag) fires for a failed step, once: flaky failed one attempt but completed, so it does not count."""
    name = f"taskfail-{uuid.uuid4().hex[:6]}"
    automation = {
        "name": f"{name} task failed", "description": "", "enabled": True, "actions": [{"type": "do-nothing"}],
        "trigger": {"type": "event", "posture": "Reactive", "threshold": 1, "within": 0,
                    "expect": ["prefect.task-run.Failed"], "match": {"prefect.resource.id": "prefect.task-run.*"},
                    "match_related": {"prefect.resource.role": "tag",
                                      "prefect.resource.id": f"prefect.tag.spec:{name}"},
                    "for_each": ["prefect.resource.id"]}}
    created = httpx.post(f"{prefect_server.api_url}/automations/", json=automation, timeout=30)
    assert created.status_code == 201, created.text
    resource = f"prefect.automation.{created.json()['id']}"

    def triggered() -> list[dict[str, Any]]:
        page = prefect_server.post("/events/filter", {"limit": 50, "filter": {
            "event": {"name": ["prefect.automation.triggered"]}, "resource": {"id": [resource]}}})
        return list(page["events"])  # type: ignore[call-overload]

    result = run_cli("run", str(_spec(tmp_path, name)), "--require-api", env=prefect_server.client_env())
    assert result.code == 1, result.output
    broken = next(t for t in settled_task_runs(prefect_server.api_url, [prefect_server.flow_run_named(name)["id"]],
                                               4) if t["name"] == "broken")
    deadline = time.monotonic() + 30
    while not triggered():
        assert time.monotonic() < deadline, "the automation on prefect.task-run.Failed never fired"
        time.sleep(0.5)
    # no timer: a sentinel event that fires the automation, sent after the run's own; the triggers service reads
    # events in order, so once the sentinel's firing is seen, any firing of flaky's failed attempt or never's
    # skip would have come before it
    sentinel = f"prefect.task-run.{uuid.uuid4()}"
    sent = httpx.post(f"{prefect_server.api_url}/events", timeout=30, json=[{
        "id": str(uuid.uuid4()), "occurred": datetime.now(UTC).isoformat(), "event": "prefect.task-run.Failed",
        "resource": {"prefect.resource.id": sentinel},
        "related": [{"prefect.resource.id": f"prefect.tag.spec:{name}", "prefect.resource.role": "tag"}],
        "payload": {}}])
    assert sent.status_code in (200, 201, 204), sent.text
    while sentinel not in json.dumps(triggered()):
        assert time.monotonic() < deadline + 30, "the sentinel event never fired the automation"
        time.sleep(0.5)
    fired = [f for f in triggered() if sentinel not in json.dumps(f)]
    assert len(fired) == 1, fired
    assert f"prefect.task-run.{broken['id']}" in json.dumps(fired[0]["payload"])
