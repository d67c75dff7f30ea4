"""The Prefect API observes; it never holds a pod back. A real `prefect server start`, killed, paused (SIGSTOP: a
black hole that accepts connections and never answers) or refusing writes (401), while a spec runs."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from prefect_init.prefect_adapter.mirror import CLOSE_BUDGET
from tests.helpers import CLI, clean_env, run_cli, write_spec
from tests.prefectserver import ServerProcess

WARNING = "warning: the Prefect API went away"


@pytest.fixture()
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path_factory.mktemp("own-server"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def env_for(server: ServerProcess, **extra: str) -> dict[str, str]:
    return clean_env(PREFECT_API_URL=server.api, PREFECT_HOME=str(server.home / "client"), **extra)


def two_steps(directory: Path) -> Path:
    """`first` runs 2 s (the API goes away during it), then `second` stamps the time it ended."""
    return write_spec(directory, f"""
        version: 1
        name: outage
        status_file: status.json
        steps:
          - name: first
            command: [sh, -c, "touch {directory}/started; sleep 2"]
          - name: second
            command: [sh, -c, "sleep 0.5; python3 -c 'import time; print(time.time())' > {directory}/last"]
        """)


def wait_for(path: Path, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def check_outcome(directory: Path, code: int, stderr: str, exited_at: float) -> None:
    assert code == 0, stderr
    status = json.loads((directory / "status.json").read_text())
    assert status["status"] == "succeeded" and [s["status"] for s in status["steps"]] == ["succeeded"] * 2
    last_step_ended = float((directory / "last").read_text())
    # the close budget (the observer tries again for that long), and 1 s for the process's own exit
    assert exited_at - last_step_ended < CLOSE_BUDGET + 1.0, exited_at - last_step_ended
    warnings = [line for line in stderr.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1 and warnings[0].startswith(WARNING), stderr
    assert "Traceback" not in stderr and "httpx" not in stderr


def test_server_killed_mid_step(server: ServerProcess, tmp_path: Path) -> None:
    proc = subprocess.Popen([*CLI, "run", str(two_steps(tmp_path)), "--require-api"], env=env_for(server),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "started")
    server.kill()
    _, stderr = proc.communicate(timeout=120)
    check_outcome(tmp_path, proc.returncode, stderr, time.time())
    assert ("(connection refused)" in stderr or "(connection lost: " in stderr) and "the final state" in stderr


def test_a_server_restarted_twice_mid_step_loses_nothing(server: ServerProcess, tmp_path: Path) -> None:
    """Killed and started again on the same port and database, twice, while a step prints a line every 0.3 s:
    every task run, state, log line, the artifact and the final state are in the server afterwards, and the pod
    still exits within the close budget of its last step."""
    import threading

    spec = write_spec(tmp_path, f"""
        version: 1
        name: restarted
        status_file: status.json
        steps:
          - name: talk
            command: [sh, -c, 'i=0; until test -f {tmp_path}/go; do i=$((i+1)); echo "tick $i"; sleep 0.3; done']
          - name: after
            command: [sh, -c, "python3 -c 'import time; print(time.time())' > {tmp_path}/last"]
        """)
    proc = subprocess.Popen([*CLI, "run", str(spec), "--require-api"], env=env_for(server),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr or []), daemon=True)
    reader.start()
    # kill once the step's Running state is in the database: events the server has taken but not yet written
    # die with a SIGKILLed server (its queue is in memory), which no client can keep; what is tested here is
    # that the pod loses nothing it sends while the server is away
    deadline = time.monotonic() + 60
    while not (any("tick 2" in line for line in lines) and httpx.post(
            f"{server.api}/task_runs/filter", json={"task_runs": {"name": {"any_": ["talk"]},
                                                                  "state": {"name": {"any_": ["Running"]}}}},
            timeout=5).json()):
        assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
        time.sleep(0.05)
    for _ in range(2):
        server.kill()
        time.sleep(1.0)
        server.start()
        time.sleep(1.0)
    (tmp_path / "go").touch()
    proc.wait(timeout=60)
    exited_at = time.time()
    reader.join(timeout=10)
    stderr = "".join(lines)
    assert proc.returncode == 0, stderr
    assert exited_at - float((tmp_path / "last").read_text()) < CLOSE_BUDGET + 1.0
    assert "warning" not in stderr.lower(), stderr  # nothing was lost
    api = httpx.Client(base_url=server.api, timeout=30)
    run, = api.post("/flow_runs/filter", json={"flow_runs": {"name": {"any_": ["restarted"]}}}).json()
    assert run["state_type"] == "COMPLETED"
    deadline = time.monotonic() + 20  # task runs are recorded from their events, by the server's recorder
    while True:
        tasks = {t["name"]: t for t in api.post("/task_runs/filter", json={
            "flow_runs": {"id": {"any_": [run["id"]]}}}).json()}
        if {t["state_type"] for t in tasks.values()} == {"COMPLETED"} and len(tasks) == 2:
            break
        assert time.monotonic() < deadline, tasks
        time.sleep(0.3)
    states = api.get("/task_run_states/", params={"task_run_id": tasks["talk"]["id"]}).json()
    assert [s["name"] for s in sorted(states, key=lambda s: s["timestamp"])] == ["Pending", "Running", "Completed"]
    printed = [line.split("[talk] ", 1)[1].strip() for line in lines if "[talk] tick " in line]
    assert len(printed) > 10, printed
    logs = api.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200}).json()
    recorded = [entry["message"] for entry in logs]
    assert [tick for tick in printed if tick not in recorded] == []
    artifacts = api.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run["id"]]}}}).json()
    assert [a["key"] for a in artifacts] == ["prefect-init-restarted"]


def test_server_black_holed_mid_step_and_resumed_after(server: ServerProcess, tmp_path: Path) -> None:
    proc = subprocess.Popen([*CLI, "run", str(two_steps(tmp_path)), "--require-api"], env=env_for(server),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "started")
    deadline = time.monotonic() + 1.5  # the step runs 2 s: let the API record its start, then black-hole it
    while not httpx.post(f"{server.api}/task_runs/filter", json={"task_runs": {"name": {"any_": ["first"]}}},
                         timeout=5).json():
        assert time.monotonic() < deadline, "the first step's task run never arrived"
        time.sleep(0.05)
    server.pause()
    try:
        _, stderr = proc.communicate(timeout=120)
        exited_at = time.time()
    finally:
        server.resume()
    check_outcome(tmp_path, proc.returncode, stderr, exited_at)
    assert re.search(r"\(no answer within \d+\.\d s\)", stderr), stderr
    # what was sent before the API went away is there: the run, and the first step's start
    runs = httpx.post(f"{server.api}/flow_runs/filter", json={"flow_runs": {"name": {"any_": ["outage"]}}},
                      timeout=30).json()
    assert len(runs) == 1
    tasks = httpx.post(f"{server.api}/task_runs/filter", json={"flow_runs": {"id": {"any_": [runs[0]["id"]]}}},
                       timeout=30).json()
    assert [t["name"] for t in tasks] == ["first"]


def test_sigterm_during_a_black_hole(server: ServerProcess, tmp_path: Path) -> None:
    import signal

    spec = write_spec(tmp_path, f"""
        version: 1
        name: term-hole
        status_file: status.json
        steps:
          - name: long
            kill_grace: 1s
            command: [sh, -c, "touch {tmp_path}/started; exec sleep 60"]
          - name: later
            command: [echo, later]
        """)
    proc = subprocess.Popen([*CLI, "run", str(spec)], env=env_for(server), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(tmp_path / "started")
    server.pause()
    try:
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
    finally:
        server.resume()
    assert proc.returncode == 1, stderr
    assert took < 1 + 2, took  # kill_grace + 2 s
    status = json.loads((tmp_path / "status.json").read_text())
    assert [s["status"] for s in status["steps"]] == ["failed", "skipped"]
    assert "Traceback" not in stderr


@pytest.fixture()
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that wants basic auth: /health answers anyone, every write without the right credentials is 401."""
    process = ServerProcess(tmp_path_factory.mktemp("locked-server"), PREFECT_SERVER_API_AUTH_STRING="admin:right")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def test_an_api_refusing_writes_is_a_local_run_or_exit_1(locked_server: ServerProcess, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: locked
        steps:
          - name: a
            command: [echo, ran]
        """)
    result = run_cli("run", str(spec), env=env_for(locked_server))
    assert result.code == 0, result.output
    assert result.stderr.splitlines()[0] == (
        f"warning: the Prefect API at {locked_server.api} refuses writes (HTTP 401: check PREFECT_API_KEY or "
        "PREFECT_API_AUTH_STRING); running locally (logs go to stderr only)")
    assert "[a] ran" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("run", str(spec), "--require-api", env=env_for(locked_server))
    assert result.code == 1
    assert result.stderr.strip() == (f"--require-api: the Prefect API at {locked_server.api} refuses writes "
                                     "(HTTP 401: check PREFECT_API_KEY or PREFECT_API_AUTH_STRING)")
    assert "ran" not in result.stderr  # nothing ran
    # positive control: with the right credentials the same run is recorded
    result = run_cli("run", str(spec), "--require-api", env=env_for(locked_server,
                                                                    PREFECT_API_AUTH_STRING="admin:right"))
    assert result.code == 0, result.output
    runs = httpx.post(f"{locked_server.api}/flow_runs/filter", auth=("admin", "right"),
                      json={"flow_runs": {"name": {"any_": ["locked"]}}}, timeout=30).json()
    assert [r["state_type"] for r in runs] == ["COMPLETED"]
