"""The engine through the real CLI in local mode: order, concurrency, retries, deadlines, skips, SIGTERM."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.helpers import CLI, clean_env, run_cli, write_spec


def _status(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_independent_steps_run_at_the_same_time(tmp_path: Path) -> None:
    """Each step stamps its start and end; the two independent ones must overlap (no wall-clock window)."""
    stamp = "python3 -c 'import time; print(time.time())'"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: parallel
        steps:
          - name: one
            after: []
            command: [sh, -c, "{stamp} > one.start; sleep 1; {stamp} > one.end"]
            cwd: .
          - name: two
            after: []
            command: [sh, -c, "{stamp} > two.start; sleep 1; {stamp} > two.end"]
            cwd: .
          - name: three
            after: [one, two]
            command: [echo, done]
    """)
    result = run_cli("run", str(spec), "--status-file", str(tmp_path / "s.json"))
    assert result.code == 0, result.output
    one_start, one_end, two_start, two_end = (float((tmp_path / name).read_text()) for name in
                                              ("one.start", "one.end", "two.start", "two.end"))
    assert one_start < two_end and two_start < one_end  # the intervals overlap
    steps = _status(tmp_path / "s.json")["steps"]
    assert [s["status"] for s in steps] == ["succeeded"] * 3


def test_default_order_is_sequential(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: seq
        steps:
          - name: first
            command: [sh, -c, "sleep 0.3; echo first >> {marks}"]
          - name: second
            command: [sh, -c, "echo second >> {marks}"]
    """)
    assert run_cli("run", str(spec)).code == 0
    assert marks.read_text().split() == ["first", "second"]


def test_retries_then_failure_and_dependents_skipped(tmp_path: Path) -> None:
    counter = tmp_path / "count"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: flaky
        defaults: {{retries: 2, retry_delay: 50ms}}
        status_file: status.json
        steps:
          - name: flaky
            command: [sh, -c, "echo x >> {counter}; echo 'disk on fire' >&2; exit 3"]
          - name: needs-flaky
            command: [echo, never]
          - name: independent
            after: []
            command: [echo, fine]
    """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert counter.read_text().count("x") == 3  # 1 attempt + 2 retries
    status = _status(tmp_path / "status.json")
    assert status["status"] == "failed"
    by_name = {s["name"]: s for s in status["steps"]}
    assert by_name["flaky"]["status"] == "failed"
    assert by_name["flaky"]["attempts"] == 3
    assert "exited with 3" in by_name["flaky"]["error"] and "disk on fire" in by_name["flaky"]["error"]
    assert by_name["needs-flaky"] == {"name": "needs-flaky", "kind": "command", "status": "skipped",
                                      "attempts": 0, "duration_s": 0.0, "error": "a step it needs failed"}
    assert by_name["independent"]["status"] == "succeeded"
    assert "[flaky] attempt 1 failed" in result.stderr and "[flaky] retrying in" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("prefect-init: flaky: step flaky (command) failed")


def test_success_after_a_retry(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: second-time-lucky
        defaults: {{retries: 3, retry_delay: 10ms}}
        steps:
          - name: once
            command: [sh, -c, "test -e {flag} || {{ touch {flag}; exit 1; }}"]
    """)
    result = run_cli("run", str(spec), "--status-file", str(tmp_path / "s.json"))
    assert result.code == 0, result.output
    assert _status(tmp_path / "s.json")["steps"][0]["attempts"] == 2


def test_deadline_kills_a_hung_command_and_its_children(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: hung
        steps:
          - name: hang
            timeout: 1s
            retries: 5
            kill_grace: 500ms
            command: [sh, -c, "sleep 300 & echo $! > {pidfile}; wait"]
    """)
    started = time.monotonic()
    result = run_cli("run", str(spec), "--status-file", str(tmp_path / "s.json"))
    elapsed = time.monotonic() - started
    assert result.code == 1
    assert elapsed < 5, elapsed  # not 300 s, and no retry after the deadline
    step = _status(tmp_path / "s.json")["steps"][0]
    assert step["attempts"] == 1
    assert "still running at the deadline (1s)" in step["error"]
    child = int(pidfile.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_status_file_on_success(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: ok
        status_file: out/status.json
        steps:
          - name: a
            command: [echo, a]
    """)
    assert run_cli("run", str(spec)).code == 0
    status = _status(tmp_path / "out/status.json")
    assert status["name"] == "ok" and status["status"] == "succeeded"
    assert status["started_at"].endswith("Z") and status["finished_at"] >= status["started_at"]
    assert status["steps"][0]["name"] == "a" and status["steps"][0]["kind"] == "command"
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_only_runs_selected_steps(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: only
        steps:
          - name: a
            command: [sh, -c, "exit 1"]
          - name: b
            command: [echo, b]
    """)
    result = run_cli("run", str(spec), "--only", "b", "--status-file", str(tmp_path / "s.json"))
    assert result.code == 0, result.output
    steps = {s["name"]: s["status"] for s in _status(tmp_path / "s.json")["steps"]}
    assert steps == {"a": "not_run", "b": "succeeded"}


def test_termination_log_gets_the_reason(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    log.write_text("")
    spec = write_spec(tmp_path, """
        version: 1
        name: term
        steps:
          - name: broken
            retries: 0
            command: [sh, -c, "echo 'cannot reach db'; exit 2"]
    """)
    result = run_cli("run", str(spec), env=clean_env(PREFECT_INIT_TERMINATION_LOG=str(log)))
    assert result.code == 1
    assert log.read_text().startswith("step broken (command) failed: sh -c")
    assert "cannot reach db" in log.read_text()


def test_sigterm_mid_run_stops_steps_and_writes_the_status(tmp_path: Path) -> None:
    started_flag = tmp_path / "started"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: term
        status_file: status.json
        steps:
          - name: long
            kill_grace: 1s
            command: [sh, -c, "touch {started_flag}; exec sleep 60"]
          - name: later
            command: [echo, later]
          - name: side
            after: []
            command: [sh, -c, "exec sleep 60"]
    """)
    proc = subprocess.Popen([*CLI, "run", str(spec)], env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not started_flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=15)
    assert time.monotonic() - sent < 5
    assert proc.returncode == 1, stderr
    status = _status(tmp_path / "status.json")
    assert status["status"] == "failed"
    by_name = {s["name"]: s for s in status["steps"]}
    assert by_name["long"]["status"] == "failed" and "SIGTERM" in by_name["long"]["error"]
    assert by_name["side"]["status"] == "failed"
    assert by_name["later"]["status"] == "skipped"
    assert "Traceback" not in stderr


def test_the_status_file_says_the_runs_peak_memory(tmp_path: Path) -> None:
    """What a memory limit must hold: prefect-init's own peak, and the largest process a step started (here a
    python that holds 120 MB, well above prefect-init's own)."""
    spec = write_spec(tmp_path, """
        version: 1
        name: mem
        status_file: status.json
        steps:
          - name: big
            command: [python3, -c, "b = bytearray(120 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"]
    """)
    # started by a small shell, not by pytest: Linux keeps a process's peak across exec, and a process forked
    # from pytest starts at pytest's own (what a container's first process does not)
    command = " ".join(shlex.quote(part) for part in [*CLI, "run", str(spec)])
    assert subprocess.run(["sh", "-c", f"{command}; exit $?"], env=clean_env()).returncode == 0
    peak = _status(tmp_path / "status.json")["peak_memory_mb"]
    assert 10 < peak["prefect_init"] < 120, peak
    assert 120 <= peak["largest_process"] < 200, peak
