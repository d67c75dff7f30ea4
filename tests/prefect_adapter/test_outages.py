"""The Prefect API observes; it never holds a pod back. A real `prefect server start`, killed, paused (SIGSTOP: a
black hole that accepts connections and never answers) or refusing writes (401), while a spec runs."""

from __future__ import annotations

import json
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
    # tighter than the close budget it checks (4 s): an observer that went on calling a lost API used the whole
    # budget and passed a bound of 5 s
    assert exited_at - last_step_ended < CLOSE_BUDGET - 1.0, exited_at - last_step_ended
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
    assert "(no answer within 2 s)" in stderr
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
