"""What a person sees: plain timestamped lines in a container, a live view on a terminal."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path

from tests.helpers import CLI, clean_env, run_cli, write_spec

SPEC = """
version: 1
name: show
defaults: {retry_delay: 10ms}
steps:
  - name: first
    command: [sh, -c, "echo hello-from-first; sleep 0.5"]
  - name: second
    retries: 1
    command: [sh, -c, "exit 3"]
  - name: third
    command: [echo, never]
"""


def test_plain_lines_without_a_terminal(tmp_path: Path) -> None:
    result = run_cli("run", str(write_spec(tmp_path, SPEC)))
    assert result.code == 1
    line = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO |WARN |ERROR) \[(first|second|third)\] .+$"
    assert all(re.match(line, ln) for ln in result.stderr.splitlines()[:-1]), result.stderr
    assert "[first] hello-from-first" in result.stderr
    assert "[second] attempt 1 failed" in result.stderr
    assert "[third] skipped: a step it needs failed" in result.stderr


def test_live_view_on_a_terminal(tmp_path: Path) -> None:
    master, slave = os.openpty()
    env = clean_env(TERM="xterm-256color", COLUMNS="120", LINES="40")
    proc = subprocess.Popen([*CLI, "run", str(write_spec(tmp_path, SPEC))], stdin=slave, stdout=slave, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    screen = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode(errors="replace"))
    assert proc.returncode == 1
    assert "\x1b[" in screen.decode(errors="replace")  # it drew, not printed plain lines
    assert "✔ first" in text and "✘ second" in text
    assert "hello-from-first" in text
    assert re.search(r"first\s+\d+\.\ds", text)  # the elapsed time of the running step
    assert "attempt 1 failed" in text
    assert "- third" in text and "skipped" in text
