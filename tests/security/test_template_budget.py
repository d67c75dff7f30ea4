"""A template cannot hold a pod back: issue 30, item 6 (the template part).

Rendering is Python in the step's thread; a loop of 10^10 iterations (the sandbox caps each ``range`` at
100 000, not two nested ones) ran 313 s against ``timeout: 3s`` and was reported as succeeded. Now the rendering
stops at the step's deadline and on SIGTERM, and the few operations that are one long computation in C (a huge
power, a huge repeated string) are refused before they start.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from tests.helpers import CLI, clean_env, run_cli, write_spec

RUNAWAY = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"


def _spec(tmp_path: Path, template: str, timeout: str = "2s", source: bool = False) -> Path:
    if source:
        (tmp_path / "runaway.j2").write_text(template)
        where = "source: runaway.j2"
    else:
        where = f"inline: {json.dumps(template)}"
    return write_spec(tmp_path, f"""
        version: 1
        name: budget
        status_file: status.json
        steps:
          - name: loop
            timeout: {timeout}
            retries: 3
            template: {{{where}, dest: out/x.conf}}
    """)


def _step(tmp_path: Path) -> dict[str, object]:
    steps: list[dict[str, object]] = json.loads((tmp_path / "status.json").read_text())["steps"]
    return steps[0]


def test_a_runaway_loop_fails_at_the_steps_deadline(tmp_path: Path) -> None:
    for source in (False, True):  # compiled from a string and from a file: both watched
        spec = _spec(tmp_path, RUNAWAY, source=source)
        started = time.monotonic()
        result = run_cli("run", str(spec), timeout=60)
        elapsed = time.monotonic() - started
        assert result.code == 1, result.stderr
        # 2 s of deadline, plus the CLI's start-up on a busy 2-core machine; today's code runs for minutes
        assert elapsed < 2 + 6, f"took {elapsed:.1f}s"
        step = _step(tmp_path)
        label = "runaway.j2" if source else "inline template"
        assert step["status"] == "failed"
        assert step["error"] == (f"template {label}: still rendering at the step's deadline of 2s (a loop too "
                                 "large?)"), step["error"]
        assert step["attempts"] == 1  # a deadline is final
        assert not (tmp_path / "out" / "x.conf").exists()
        assert "Traceback" not in result.stderr


def test_sigterm_stops_a_runaway_render(tmp_path: Path) -> None:
    """The step reads a secret from a FIFO before it renders (a template's ``files:`` refuses a FIFO, a secret's
    ``{file: ...}`` waits on it): once the test has written it, the step is past its own checks and in the render,
    where only the watch can see SIGTERM."""
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    spec = write_spec(tmp_path, f"""
        version: 1
        name: budget
        status_file: status.json
        steps:
          - name: loop
            timeout: 10m
            template: {{inline: {json.dumps(RUNAWAY)}, dest: out/x.conf, secrets: {{gate: {{file: {gate}}}}}}}
    """)
    proc = subprocess.Popen([*CLI, "run", str(spec)], env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    killer = threading.Timer(90, proc.kill)  # the bound: a hung run fails the test, never hangs it
    killer.start()
    try:
        writer = -1
        while writer < 0 and proc.poll() is None:
            try:  # ENXIO until the step opens its end: the step is then reading the document
                writer = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                assert exc.errno == errno.ENXIO, exc
                time.sleep(0.02)
        assert writer >= 0, "the run ended before it read the document"
        os.write(writer, b"gate-value")
        os.close(writer)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate()
        stopped_in = time.monotonic() - sent
    finally:
        killer.cancel()
    assert proc.returncode == 1, stderr
    assert stopped_in < 5, f"stopped {stopped_in:.1f}s after SIGTERM"
    step = _step(tmp_path)
    # the render stopped itself (not the engine's safety net, which says "still running ... after SIGTERM")
    assert step["status"] == "failed", step
    assert step["error"] == "step 'loop' stopped: the run was terminated (SIGTERM)", step
    assert not (tmp_path / "out" / "x.conf").exists()


def test_one_huge_computation_is_refused_before_it_starts(tmp_path: Path) -> None:
    """A single operation in C cannot be interrupted: the sandbox refuses what would be far too large."""
    cases = {
        "power": "{{ (9 ** (9 ** 9)) > 0 }}",              # 9**387420489: minutes of big-integer arithmetic
        "repeat": "{{ ('x' * 104857600)|length }}",      # 100 MiB of one string
        "list": "{{ ([1] * 104857600)|length }}",        # 100 Mi references
    }
    fine = "{{ 2 ** 64 }} {{ '-' * 40 }} {{ ([0] * 3)|length }}"
    steps = "".join(f"""
          - name: {name}
            after: []
            timeout: 30s
            template: {{inline: {json.dumps(text)}, dest: out/{name}.conf}}""" for name, text in
                    {**cases, "fine": fine}.items())
    spec = write_spec(tmp_path, "version: 1\nname: huge\nstatus_file: status.json\nsteps:" + steps + "\n")
    result = run_cli("run", str(spec), timeout=60)
    assert result.code == 1, result.stderr
    by_name = {s["name"]: s for s in json.loads((tmp_path / "status.json").read_text())["steps"]}
    assert by_name["fine"]["status"] == "succeeded", by_name["fine"]
    assert (tmp_path / "out" / "fine.conf").read_text() == f"{2 ** 64} {'-' * 40} 3"
    for name in cases:
        assert by_name[name]["status"] == "failed", by_name[name]
        assert by_name[name]["error"].startswith("template inline template: refused by the sandbox: "), by_name[name]
        assert "too large" in by_name[name]["error"], by_name[name]
