"""Helpers shared by the tests: run the real CLI in a subprocess, write specs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLI = [sys.executable, "-m", "prefect_init.cli"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI run: no Prefect API (local mode) unless the test sets one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = env.get("PREFECT_INIT_TEST_PREFECT_HOME", "/nonexistent-prefect-home")
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path | None = None) -> Result:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else clean_env(), cwd=cwd)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def write_spec(directory: Path, text: str, name: str = "init.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


OPTIONAL_SPEC = """
version: 1
name: {name}
status_file: status.json
steps:
  - name: prepare
    command: [echo, ready]
  - name: warm-cache
    optional: true
    retries: 1
    retry_delay: 10ms
    command: ["false"]
  - name: report-cache
    optional: true
    after: [warm-cache]
    command: [echo, never]
  - name: serve
    after: [prepare]
    command: [echo, serve]
"""
"""Two optional steps, the first failing (two attempts) and the second after it, beside two required ones: the
spec of tests/run/test_optional.py and tests/prefect_adapter/test_optional.py."""


def run_cli_reacting(*args: str, on: dict[str, Callable[[], object]], env: dict[str, str] | None = None,
                     timeout: float = 60) -> Result:
    """Run the CLI and, the first time a line of its stderr contains a key of ``on``, call that action.

    For tests whose event must happen after the CLI has seen the "before" state (a port that opens once the
    wait has found it closed): no timing window that a slow start-up can miss. Bounded by ``timeout``."""
    proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env if env is not None else clean_env())
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    pending = dict(on)
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            for trigger in [t for t in pending if t in line]:
                pending.pop(trigger)()
        stdout = proc.stdout.read() if proc.stdout else ""
        code = proc.wait()
    finally:
        timer.cancel()
    assert not pending, f"never saw {list(pending)} in: {''.join(lines)[-2000:]}"
    return Result(code, stdout, "".join(lines))


def git(*args: str, cwd: Path) -> str:
    """Run git in ``cwd`` with a fixed identity; its stdout."""
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


def source_snapshot(destination: Path) -> Path:
    """The checkout as git sees it (tracked and untracked files, not ignored ones): what a build of the
    sources gets, with no stale build/ output or virtual environment."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (root / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, destination / name)
    return destination
