"""Every Prefect 3 server from 3.1 on records a mirrored run whole: 3.1.15 and 3.4.25, each started from its own
virtual environment (made by ``bash tests/servers/setup.sh``), and the newest, the project's own."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PrefectServer
from tests.helpers import run_cli, write_spec
from tests.prefectserver import ServerProcess, settled_task_runs

VENVS = Path(os.environ.get("PREFECT_INIT_SERVERS_WORK", "/var/tmp/prefect-init-servers"))
MARKER = ".prefect-init-installed"
"""Written by tests/servers/setup.sh once a version's venv is whole."""
OLDER = ["3.1.15", "3.4.25"]
NEWEST = "newest"
"""The project's own prefect (this interpreter's venv)."""


@pytest.fixture(scope="module", params=[*OLDER, NEWEST])
def versioned_server(request: pytest.FixtureRequest,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, PrefectServer]]:
    """(the version expected, the server): one at a time, each on its own SQLite database."""
    wanted: str = request.param
    prefect: Path | None = None
    if wanted == NEWEST:
        wanted = installed_version("prefect")
    else:
        venv = VENVS / wanted
        if not (venv / MARKER).is_file():
            pytest.fail(f"no Prefect {wanted} server: {venv} is not made; run `bash tests/servers/setup.sh` "
                        "(the README's test command does)", pytrace=False)
        prefect = venv / "bin" / "prefect"
    home = tmp_path_factory.mktemp(f"prefect-{wanted}")
    process = ServerProcess(home, prefect=prefect)
    try:
        api = process.start(wait=180)
        yield wanted, PrefectServer(api, home, home / "prefect.db")
    finally:
        process.stop()


def _states(server: PrefectServer, task_run_id: str, count: int, limit: float = 20) -> list[dict[str, Any]]:
    """A task run's states, oldest first, once there are ``count`` (the recorder writes them from events)."""
    deadline = time.monotonic() + limit
    while True:
        states = sorted(server.get(f"/task_run_states/?task_run_id={task_run_id}"), key=lambda s: s["timestamp"])
        if len(states) >= count or time.monotonic() > deadline:
            return states
        time.sleep(0.2)


def _logs(server: PrefectServer, flow_run_id: str, limit: float = 20) -> list[dict[str, Any]]:
    """The run's log lines, oldest first, once the flow run's own last line ("Finished in state") is there."""
    deadline = time.monotonic() + limit
    while True:
        logs = server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200,
                                            "sort": "TIMESTAMP_ASC"})
        if any(e["message"].startswith("Finished in state") and e["task_run_id"] is None for e in logs) \
                or time.monotonic() > deadline:
            return logs
        time.sleep(0.3)


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _timeless(text: str) -> str:
    """A message without its measured times (``after 0.1s``, ``retrying in 0.08s``)."""
    return re.sub(r"\d+\.\d+s\b", "Ts", text)


def test_a_whole_run_is_recorded(versioned_server: tuple[str, PrefectServer], tmp_path: Path) -> None:
    version, server = versioned_server
    # the server is the version named, not the project's by mistake
    assert server.get("/admin/version") == version

    name = f"v{version.replace('.', '-')}-{uuid.uuid4().hex[:6]}"
    marker = tmp_path / "flaky-failed-once"
    flaky = f"if [ -e {marker} ]; then echo flaky-2; else touch {marker}; echo flaky-1; exit 3; fi"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        steps:
          - name: prepare
            command: [sh, -c, "echo prepare-1; echo prepare-2"]
          - name: flaky
            after: [prepare]
            retries: 1
            retry_delay: 100ms
            command: [sh, -c, "{flaky}"]
          - name: report
            after: [flaky]
            command: [echo, report-1]
          - name: broken
            after: [prepare]
            retries: 0
            command: [sh, -c, "echo broken-1; exit 7"]
          - name: skipped
            after: [broken]
            command: [echo, never]
    """)
    result = run_cli("run", str(spec), "--require-api", env=server.client_env())
    assert result.code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"prefect-init: {name}: flow run {name}: "), result.stderr
    # everything was taken: no "Not recorded in Prefect", no "refused part of the record", no local fallback
    assert not [line for line in lines if line.startswith("warning:")], result.stderr

    runs = server.post("/flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}}})
    assert len(runs) == 1, runs
    flow_run = runs[0]
    broken_error = "sh -c 'echo broken-1; exit 7': exited with 7 after Ts\nlast output:\nbroken-1"
    assert (flow_run["state_type"], flow_run["state_name"]) == ("FAILED", "Failed")
    assert _timeless(flow_run["state"]["message"]) == f"step broken (command) failed: {broken_error}"
    flow_states = server.get(f"/flow_run_states/?flow_run_id={flow_run['id']}")
    assert [s["type"] for s in sorted(flow_states, key=lambda s: s["timestamp"])] == ["PENDING", "RUNNING", "FAILED"]

    tasks = {t["name"]: t for t in settled_task_runs(server.api_url, [flow_run["id"]], 5)}
    assert sorted(tasks) == ["broken", "flaky", "prepare", "report", "skipped"]
    ids = {step: task["id"] for step, task in tasks.items()}
    done = [("PENDING", "Pending"), ("RUNNING", "Running"), ("COMPLETED", "Completed")]
    expected_states = {
        "prepare": done, "report": done,
        "flaky": [("PENDING", "Pending"), ("RUNNING", "Running"), ("SCHEDULED", "AwaitingRetry"),
                  ("RUNNING", "Retrying"), ("COMPLETED", "Completed")],
        "broken": [("PENDING", "Pending"), ("RUNNING", "Running"), ("FAILED", "Failed")],
        "skipped": [("PENDING", "Pending"), ("PENDING", "NotReady")],
    }
    states = {step: _states(server, ids[step], len(expected)) for step, expected in expected_states.items()}
    assert {step: [(s["type"], s["name"]) for s in found] for step, found in states.items()} == expected_states
    assert {step: (t["state_type"], t["state_name"]) for step, t in tasks.items()} == {
        step: expected[-1] for step, expected in expected_states.items()}
    assert {step: t["run_count"] for step, t in tasks.items()} == {
        "prepare": 1, "flaky": 2, "report": 1, "broken": 1, "skipped": 0}
    # the retry's time: 100 ms after the failed attempt (the engine's jitter is 20 %)
    awaiting = states["flaky"][2]
    delay = _seconds(awaiting["state_details"]["scheduled_time"]) - _seconds(awaiting["timestamp"])
    assert 0.07 <= delay <= 0.15, delay
    first_failure = f"sh -c '{flaky}': exited with 3 after Ts\nlast output:\nflaky-1"
    assert _timeless(awaiting["message"]) == first_failure
    assert _timeless(states["broken"][-1]["message"]) == broken_error
    assert states["skipped"][-1]["message"] == "Upstream task run 'broken' did not reach a 'COMPLETED' state."
    # the `after:` edges, as Prefect's wait_for
    waited = {step: [i["id"] for i in t["task_inputs"].get("wait_for", [])] for step, t in tasks.items()}
    assert waited == {"prepare": [], "flaky": [ids["prepare"]], "report": [ids["flaky"]],
                      "broken": [ids["prepare"]], "skipped": [ids["broken"]]}

    # every log line, on its task run (or the flow run's own), at its level
    steps_by_id = {task_id: step for step, task_id in ids.items()}
    logs = _logs(server, flow_run["id"])
    recorded: dict[str | None, list[tuple[int, str]]] = {}
    for entry in logs:
        recorded.setdefault(steps_by_id.get(entry["task_run_id"]) if entry["task_run_id"] else None, []).append(
            (entry["level"], _timeless(entry["message"])))
    flow_lines = recorded.pop(None, [])
    assert recorded == {
        "prepare": [(20, "running: sh -c 'echo prepare-1; echo prepare-2'"), (20, "prepare-1"), (20, "prepare-2"),
                    (20, "Finished in state Completed()")],
        "flaky": [(20, f"running: sh -c '{flaky}'"), (20, "flaky-1"),
                  (30, f"attempt 1 failed: {first_failure}; retrying in Ts"),
                  (20, f"running: sh -c '{flaky}'"), (20, "flaky-2"), (20, "Finished in state Completed()")],
        "report": [(20, "running: echo report-1"), (20, "report-1"), (20, "Finished in state Completed()")],
        "broken": [(20, "running: sh -c 'echo broken-1; exit 7'"), (20, "broken-1"),
                   (40, f"Finished in state Failed({broken_error!r})")],
        "skipped": [(40, "Finished in state NotReady(\"Upstream task run 'broken' did not reach a 'COMPLETED' "
                         "state.\", type=PENDING)")],
    }
    # the flow run's own lines, as Prefect's engine writes them: its beginning and its end
    assert flow_lines == [(20, f"Beginning flow run {name!r} for flow 'prefect-init'"),
                          (40, f"Finished in state Failed({'step broken (command) failed: ' + broken_error!r})")]
    assert flow_lines[-1][1].startswith("Finished in state Failed(")

    artifacts = server.post("/artifacts/filter", {"artifacts": {"key": {"any_": [f"prefect-init-{name}"]}}})
    assert len(artifacts) == 1, artifacts
    artifact = artifacts[0]
    assert (artifact["type"], artifact["flow_run_id"]) == ("markdown", flow_run["id"])
    assert artifact["description"] == f"prefect-init run of {name}: failed"
    rows = [_timeless(line) for line in artifact["data"].splitlines() if line.startswith("| ")][1:]
    assert rows == [
        "| prepare | command | succeeded | 1 | Ts |  |",
        "| flaky | command | succeeded | 2 | Ts |  |",
        "| report | command | succeeded | 1 | Ts |  |",
        "| broken | command | failed | 1 | Ts | sh -c 'echo broken-1; exit 7': exited with 7 after Ts last output: "
        "broken-1 |",
        "| skipped | command | skipped | 0 | Ts | a step it needs failed |",
    ]
