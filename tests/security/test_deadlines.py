"""A step's deadline and SIGTERM hold for every kind, also for a step that never looks at them.

The engine's safety net, through the real CLI: a step still running past its deadline is failed (never
succeeded), its dependents are skipped, its late return changes nothing, and the process exits; on SIGTERM the
run ends within the grace whether or not its steps stop, with the status file written. Two steps that ignore
their deadline: ``spin`` (a test-only kind computing in pure Python, as a template looping 10^10 times did) and a
``validate`` of a FIFO nobody writes (the thread blocks in the kernel, in ``open``/``read``).
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from prefect_init.run.engine import STOP_GRACE
from tests.helpers import CLI, clean_env, run_cli, write_spec

ROOT = Path(__file__).resolve().parents[2]
BOUND = 3.0
"""What a test allows beyond the engine's own timing: the exit itself on a busy 2-core machine."""


def spin_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The CLI's environment with the test-only ``spin`` kind registered (a ``sitecustomize`` on PYTHONPATH)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        "from prefect_init.spec.registry import KINDS\nKINDS['spin'] = 'tests.security.spin_kind'\n")
    return clean_env(PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]), **extra)


def _status(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _steps(path: Path) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in _status(path)["steps"]}


def test_a_step_computing_past_its_deadline_fails_and_its_late_return_changes_nothing(tmp_path: Path) -> None:
    """``spin`` runs 6 s against ``timeout: 1s``: failed at the deadline (not succeeded after 6 s); the run goes
    on (``other`` waits until spin's thread has ended, so the late return reaches the engine before the run
    ends), and that return neither flips the status nor publishes the output ``turns`` nor starts ``after``."""
    returned, marker = tmp_path / "returned", tmp_path / "after-ran"
    log = tmp_path / "termination-log"
    log.write_text("")
    spec = write_spec(tmp_path, f"""
        version: 1
        name: spinning
        status_file: status.json
        steps:
          - name: spin
            timeout: 1s
            retries: 3
            spin: {{seconds: 6, returned: {returned}}}
          - name: after
            after: [spin]
            command: [sh, -c, "echo ${{steps.spin.turns}} > {marker}"]
          - name: other
            after: []
            timeout: 60s
            command: [sh, -c, "while [ ! -e {returned} ]; do sleep 0.05; done"]
    """)
    started = time.monotonic()
    result = run_cli("run", str(spec), env=spin_env(tmp_path, PREFECT_INIT_TERMINATION_LOG=str(log)), timeout=30)
    took = time.monotonic() - started
    assert result.code == 1, result.output
    assert returned.exists(), result.output  # the late return happened while the run went on
    status = _status(tmp_path / "status.json")
    assert status["status"] == "failed", status
    steps = _steps(tmp_path / "status.json")
    assert steps["spin"]["status"] == "failed", steps
    assert "still running at its deadline of 1s" in steps["spin"]["error"], steps
    assert "did not stop by itself" in steps["spin"]["error"], steps
    assert steps["spin"]["attempts"] == 1, steps  # no attempt after the deadline
    assert "outputs" not in steps["spin"], steps
    assert steps["after"]["status"] == "skipped" and not marker.exists(), steps
    assert steps["other"]["status"] == "succeeded", steps
    assert "still running at its deadline of 1s" in log.read_text()
    assert took < 6 + BOUND, f"{took:.1f}s"  # the run ended soon after the late return, not much later
    assert "Traceback" not in result.output


def test_a_step_whose_own_pool_worker_computes_on_does_not_hold_the_exit(tmp_path: Path) -> None:
    """``spin`` computes in a worker of a thread pool of its own (as ``wait`` and ``vault`` run their probes):
    a thread that is no daemon and that the interpreter joins at exit. The run still ends at the deadline."""
    spec = write_spec(tmp_path, """
        version: 1
        name: pooled
        status_file: status.json
        steps:
          - name: spin
            timeout: 1s
            spin: {seconds: 600, in_pool: true}
    """)
    started = time.monotonic()
    result = run_cli("run", str(spec), env=spin_env(tmp_path), timeout=30)
    took = time.monotonic() - started
    assert result.code == 1, result.output
    steps = _steps(tmp_path / "status.json")
    assert steps["spin"]["status"] == "failed", steps
    assert "still running at its deadline of 1s" in steps["spin"]["error"], steps
    assert took < 1 + STOP_GRACE + BOUND, f"{took:.1f}s"
    assert result.stderr.splitlines()[-1].startswith("prefect-init: pooled: step spin (spin) failed"), result.stderr


def test_a_step_left_behind_falls_silent(tmp_path: Path) -> None:
    """A step that logs on and on past its deadline: once the engine has failed it, its lines stop (at most one
    already under way), so the run's last lines are its own."""
    spec = write_spec(tmp_path, """
        version: 1
        name: chatty
        status_file: status.json
        steps:
          - name: spin
            timeout: 1s
            spin: {seconds: 600, chatty: 100}
    """)
    result = run_cli("run", str(spec), env=spin_env(tmp_path), timeout=30)
    assert result.code == 1, result.output
    lines = result.stderr.splitlines()
    failed = next(i for i, line in enumerate(lines) if "[spin] failed" in line)
    assert any("[spin] turn " in line for line in lines[:failed]), lines[:20]  # it did log before
    later = [line for line in lines[failed + 1:] if "[spin] turn " in line]
    assert len(later) <= 1, later[:5]
    assert lines[-1].startswith("prefect-init: chatty: step spin (spin) failed"), lines[-5:]


def test_a_command_gets_its_kill_grace_before_the_engine_steps_in(tmp_path: Path) -> None:
    """A command that ignores SIGTERM, ``timeout: 1s``, ``kill_grace: 3s``: the command's own deadline kills
    its process group (SIGKILL after 3 s, past the engine's bare 2 s), so the error is the command's own and no
    process is left running: the engine waits the step's kill grace too."""
    pidfile = tmp_path / "child.pid"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: stubborn
        status_file: status.json
        steps:
          - name: stubborn
            timeout: 1s
            kill_grace: 3s
            command: [sh, -c, "trap '' TERM; sleep 120 & echo $! > {pidfile}; wait; wait"]
    """)
    result = run_cli("run", str(spec), timeout=30)
    assert result.code == 1, result.output
    error = _steps(tmp_path / "status.json")["stubborn"]["error"]
    assert "still running at the deadline (1s); the process group was killed" in error, error
    child = Path(f"/proc/{int(pidfile.read_text())}")
    assert not child.exists() or (child / "stat").read_text().split()[2] == "Z", "the command's child still runs"


@contextmanager
def fifo(path: Path) -> Iterator[Path]:
    os.mkfifo(path)
    try:
        yield path
    finally:  # a reader still blocked in open() is let go
        with suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def test_a_step_blocked_in_the_kernel_fails_at_its_deadline_and_the_process_exits(tmp_path: Path) -> None:
    """A ``validate`` of a FIFO that nobody writes blocks its thread in ``open`` for good: the step is failed at
    its deadline, the independent step still runs, and the process exits with 1 (a stuck thread does not hold
    the interpreter's exit)."""
    spec = write_spec(tmp_path, """
        version: 1
        name: blocked
        status_file: status.json
        steps:
          - name: stuck
            timeout: 1s
            validate: {file: pipe.json, format: json, non_empty: false}
          - name: after
            after: [stuck]
            command: [echo, never]
          - name: side
            after: []
            command: [echo, side]
    """)
    with fifo(tmp_path / "pipe.json"):
        started = time.monotonic()
        result = run_cli("run", str(spec), timeout=30)
        took = time.monotonic() - started
    assert result.code == 1, result.output
    steps = _steps(tmp_path / "status.json")
    assert steps["stuck"]["status"] == "failed", steps
    assert "still running at its deadline of 1s" in steps["stuck"]["error"], steps
    assert steps["after"]["status"] == "skipped", steps
    assert steps["side"]["status"] == "succeeded", steps
    assert took < 1 + STOP_GRACE + BOUND, f"{took:.1f}s"


def _terminate_once(args: list[str], env: dict[str, str], ready: Callable[[subprocess.Popen[str]], object]
                    ) -> tuple[int, str, float]:
    """Run the CLI, send SIGTERM once ``ready(proc)`` returned (an event of the run, not a timer): its exit code,
    stderr and the seconds from SIGTERM to its exit. Bounded: killed if still there 30 s after SIGTERM."""
    proc = subprocess.Popen([*CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = str(ready(proc) or "")
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            _, stderr = proc.communicate(timeout=STOP_GRACE + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        return proc.returncode, seen + stderr, time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _line(text: str) -> Callable[[subprocess.Popen[str]], str]:
    """Read the run's stderr until a line holds ``text`` (the lines read so far are returned)."""
    def ready(proc: subprocess.Popen[str]) -> str:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if text in line:
                return "".join(lines)
        raise AssertionError(f"never saw {text!r} in: {''.join(lines)[-2000:]}")
    return ready


def test_sigterm_ends_a_run_whose_step_computes_on(tmp_path: Path) -> None:
    """SIGTERM once ``spin`` has begun (its own line): the run ends within the grace although the step never
    stops, exit 1, the status file written with the step failed by SIGTERM."""
    spec = write_spec(tmp_path, """
        version: 1
        name: term-spin
        status_file: status.json
        steps:
          - name: spin
            timeout: 10m
            spin: {seconds: 600}
          - name: later
            command: [echo, later]
    """)
    code, stderr, took = _terminate_once(["run", str(spec)], spin_env(tmp_path), _line("[spin] spinning"))
    assert code == 1, stderr
    assert took < STOP_GRACE + BOUND, f"{took:.1f}s after SIGTERM"
    status = _status(tmp_path / "status.json")
    assert status["status"] == "failed", status
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["spin"]["status"] == "failed" and "SIGTERM" in steps["spin"]["error"], steps
    assert "did not stop by itself" in steps["spin"]["error"], steps
    assert steps["later"]["status"] == "skipped", steps
    assert "Traceback" not in stderr


def _wait_for_reader(path: Path, within: float = 30) -> int:
    """Open the FIFO's write end once a reader is in ``open`` (ENXIO before): the step is blocked in the
    kernel. The write end stays open and silent, so the reader's ``read`` blocks next."""
    until = time.monotonic() + within
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > until:
                raise
        time.sleep(0.02)


def test_sigterm_ends_a_run_whose_step_is_blocked_in_the_kernel(tmp_path: Path) -> None:
    """SIGTERM once the ``validate`` step's thread is in the FIFO (the test sees a reader): the run ends within
    the grace, exit 1, the status file written."""
    spec = write_spec(tmp_path, """
        version: 1
        name: term-blocked
        status_file: status.json
        steps:
          - name: stuck
            timeout: 10m
            validate: {file: pipe.json, format: json, non_empty: false}
    """)
    writers: list[int] = []
    with fifo(tmp_path / "pipe.json") as pipe:
        try:
            code, stderr, took = _terminate_once(["run", str(spec)], clean_env(),
                                                 lambda proc: writers.append(_wait_for_reader(pipe)))
        finally:
            for fd in writers:
                os.close(fd)
    assert writers, "the step never opened the FIFO"
    assert code == 1, stderr
    assert took < STOP_GRACE + BOUND, f"{took:.1f}s after SIGTERM"
    steps = _steps(tmp_path / "status.json")
    assert steps["stuck"]["status"] == "failed" and "SIGTERM" in steps["stuck"]["error"], steps
    assert "did not stop by itself" in steps["stuck"]["error"], steps
    assert "Traceback" not in stderr
