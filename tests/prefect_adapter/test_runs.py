"""Runs you can find, filter and be alerted on: pod identity in names and tags, events per step and per run, an
automation firing on a failed run, and `prefect-init runs`. A real `prefect server start`."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import PrefectServer
from tests.helpers import run_cli, write_spec

CANARY = "findable-canary-51515"


def _spec(tmp_path: Path, name: str, fail: bool = False) -> Path:
    secret = tmp_path / "token"
    secret.write_text(CANARY)
    last = '[sh, -c, "echo $TOKEN; exit 3"]' if fail else "[sh, -c, 'echo $TOKEN']"
    return write_spec(tmp_path, f"""
        version: 1
        name: {name}
        tags: [team-a, "release-${{APP_VERSION:-dev}}"]
        status_file: status.json
        steps:
          - name: prepare
            files: {{dirs: [{{path: out, mode: "0755"}}]}}
          - name: finish
            retries: 0
            command: {last}
            env: {{TOKEN: {{file: {secret}}}}}
        """, f"{name}.yaml")


def _pod_env(server: PrefectServer, pod: str, **extra: str) -> dict[str, str]:
    return server.client_env(POD_NAME=pod, POD_NAMESPACE="shop", NODE_NAME="node-7", APP_VERSION="1.4.2", **extra)


def _runs(server: PrefectServer, **flow_runs: Any) -> list[dict[str, Any]]:
    return server.post("/flow_runs/filter", {"flow_runs": flow_runs, "sort": "NAME_ASC"})


def _events(server: PrefectServer, prefix: str, spec: str, expect: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30  # events are persisted a moment after they arrive
    while True:
        page = httpx.post(f"{server.api_url}/events/filter", timeout=30, json={"limit": 50, "filter": {
            "event": {"prefix": [prefix]}, "resource": {"labels": {"prefect-init.spec": spec}}}}).json()
        if len(page["events"]) >= expect or time.monotonic() > deadline:
            return list(page["events"])
        time.sleep(0.5)


def test_pods_are_told_apart_and_events_arrive(prefect_server: PrefectServer, tmp_path: Path) -> None:
    name = f"shop-{uuid.uuid4().hex[:6]}"
    spec = _spec(tmp_path, name)
    for pod in ("shop-7d9f-aaaaa", "shop-7d9f-bbbbb", "shop-7d9f-ccccc"):
        result = run_cli("run", str(spec), "--require-api", env=_pod_env(prefect_server, pod))
        assert result.code == 0, result.output
        assert "warning" not in result.stderr, result.stderr  # everything, events included, was recorded
    runs = _runs(prefect_server, tags={"all_": [f"spec:{name}"]})
    assert [r["name"] for r in runs] == [f"{name}/shop-7d9f-aaaaa", f"{name}/shop-7d9f-bbbbb",
                                         f"{name}/shop-7d9f-ccccc"]
    assert set(runs[1]["tags"]) == {"prefect-init", f"spec:{name}", "namespace:shop", "pod:shop-7d9f-bbbbb",
                                    "node:node-7", "team-a", "release-1.4.2"}
    one = _runs(prefect_server, tags={"all_": [f"spec:{name}", "pod:shop-7d9f-bbbbb"]})
    assert [r["name"] for r in one] == [f"{name}/shop-7d9f-bbbbb"]
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["identity"] == {"namespace": "shop", "pod": "shop-7d9f-ccccc", "node": "node-7"}
    artifact = prefect_server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [runs[2]["id"]]}}})
    assert "pod `shop-7d9f-ccccc`" in artifact[0]["data"]

    steps = _events(prefect_server, "prefect-init.step.", name, expect=6)
    assert sorted(e["event"] for e in steps) == ["prefect-init.step.succeeded"] * 6
    finish = next(e for e in steps if e["resource"]["prefect.resource.id"] == f"prefect-init.step.{name}.finish")
    assert finish["payload"]["kind"] == "command" and finish["payload"]["attempts"] == 1
    assert finish["resource"]["prefect-init.pod"].startswith("shop-7d9f-")
    assert finish["related"][0]["prefect.resource.id"].startswith("prefect.flow-run.")
    run_events = _events(prefect_server, "prefect-init.run.", name, expect=3)
    assert sorted(e["event"] for e in run_events) == ["prefect-init.run.succeeded"] * 3
    logs = str(prefect_server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [runs[0]["id"]]}}}))
    assert "****" in logs  # positive control: the secret was printed, masked
    for text in (str(steps), str(run_events), str(runs), logs, artifact[0]["data"]):
        assert CANARY not in text


def test_an_automation_fires_on_a_failed_run_only(prefect_server: PrefectServer, tmp_path: Path) -> None:
    """The automation of deployments/automations/ (its notification swapped for do-nothing: no block here),
    and its firing read back: the server's own prefect.automation.triggered and action.executed events."""
    name = f"alert-{uuid.uuid4().hex[:6]}"
    automation = json.loads((Path(__file__).resolve().parents[2] / "deployments" / "automations" /
                             "init-failed.json").read_text())
    assert automation["trigger"]["expect"] == ["prefect-init.run.failed"]
    automation["name"] = f"{name} init failed"
    automation["trigger"]["match"] = {"prefect.resource.id": f"prefect-init.run.{name}"}
    automation["actions"] = [{"type": "do-nothing"}]
    created = httpx.post(f"{prefect_server.api_url}/automations/", json=automation, timeout=30)
    assert created.status_code == 201, created.text
    resource = f"prefect.automation.{created.json()['id']}"

    def fired() -> list[str]:
        page = httpx.post(f"{prefect_server.api_url}/events/filter", timeout=30, json={"limit": 50, "filter": {
            "event": {"prefix": ["prefect.automation."]}, "resource": {"id": [resource]}}}).json()
        return sorted(e["event"] for e in page["events"] if e["event"] != "prefect.automation.created")

    ok = run_cli("run", str(_spec(tmp_path, name)), "--require-api", env=_pod_env(prefect_server, "pod-ok"))
    assert ok.code == 0
    assert _events(prefect_server, "prefect-init.run.", name, expect=1)  # the success event arrived
    failed = run_cli("run", str(_spec(tmp_path, name, fail=True)), "--require-api",
                     env=_pod_env(prefect_server, "pod-bad"))
    assert failed.code == 1
    deadline = time.monotonic() + 30
    while "prefect.automation.action.executed" not in fired():
        assert time.monotonic() < deadline, f"the automation never fired on the failed run: {fired()}"
        time.sleep(0.5)
    # the triggers service reads events in order: once the failure's firing is seen, the success was read
    # before it, and had it fired, there would be two firings (no timer to wait out)
    assert fired().count("prefect.automation.triggered") == 1, fired()
    assert fired().count("prefect.automation.action.executed") == 1, fired()
    event = [e for e in _events(prefect_server, "prefect-init.run.", name, expect=2)
             if e["event"] == "prefect-init.run.failed"]
    assert event and event[0]["payload"]["failed_step"] == "finish"
    assert event[0]["resource"]["prefect-init.pod"] == "pod-bad"


def test_runs_lists_the_failed_ones(prefect_server: PrefectServer, tmp_path: Path) -> None:
    name = f"oncall-{uuid.uuid4().hex[:6]}"
    for pod, fail in (("pod-1", False), ("pod-2", True), ("pod-3", False), ("pod-4", True)):
        assert run_cli("run", str(_spec(tmp_path, name, fail)), env=_pod_env(prefect_server, pod)).code == int(fail)
    env = prefect_server.client_env()
    every = run_cli("runs", name, env=env)
    assert every.code == 0, every.output
    header, *rows = every.stdout.splitlines()
    assert header.split() == ["RUN", "POD", "STATE", "FAILED", "STEP", "STARTED", "DURATION", "URL"]
    assert sorted(r.split()[1] for r in rows) == ["pod-1", "pod-2", "pod-3", "pod-4"]
    failed = run_cli("runs", name, "--failed", env=env)
    assert failed.code == 0, failed.output
    rows = failed.stdout.splitlines()[1:]
    assert sorted(r.split()[1] for r in rows) == ["pod-2", "pod-4"]
    assert all(r.split()[:4] == [f"{name}/{r.split()[1]}", r.split()[1], "Failed", "finish"] for r in rows)
    assert all("/runs/flow-run/" in r for r in rows)
    by_tag = run_cli("runs", "--tag", "pod:pod-3", env=env)
    assert [r.split()[1] for r in by_tag.stdout.splitlines()[1:]] == ["pod-3"]
    # a schedule's future runs (Scheduled, not started) do not push the real ones out: newest started first
    flow = prefect_server.get("/flows/name/prefect-init")
    for hours in (1, 2, 3):
        prefect_server.post("/flow_runs/", {
            "flow_id": flow["id"], "name": f"{name}-later-{hours}", "tags": [f"spec:{name}"],
            "state": {"type": "SCHEDULED", "name": "Scheduled", "state_details": {
                "scheduled_time": (datetime.now(UTC) + timedelta(hours=hours)).isoformat()}}})
    newest = run_cli("runs", name, "--limit", "2", env=env)
    assert [r.split()[1] for r in newest.stdout.splitlines()[1:]] == ["pod-4", "pod-3"], newest.stdout
    # newest *started* first: a run expected a day ago (a late schedule, a retried Job) that starts now leads,
    # where a sort by expected start would put it last
    late: Any = prefect_server.post("/flow_runs/", {
        "flow_id": flow["id"], "name": f"{name}/pod-late", "tags": [f"spec:{name}", "pod:pod-late"],
        "state": {"type": "SCHEDULED", "name": "Scheduled", "state_details": {
            "scheduled_time": (datetime.now(UTC) - timedelta(days=1)).isoformat()}}})
    running: Any = prefect_server.post(f"/flow_runs/{late['id']}/set_state",
                                  {"state": {"type": "RUNNING", "name": "Running"}, "force": True})
    assert running["status"] == "ACCEPT", running
    assert prefect_server.get(f"/flow_runs/{late['id']}")["start_time"] is not None  # the control: it started
    started = run_cli("runs", name, "--limit", "2", env=env)
    assert [r.split()[1] for r in started.stdout.splitlines()[1:]] == ["pod-late", "pod-4"], started.stdout
    ahead = run_cli("runs", name, "--limit", "2", "--scheduled", env=env)
    assert [r.split()[2] for r in ahead.stdout.splitlines()[1:]] == ["Scheduled", "Scheduled"], ahead.stdout
