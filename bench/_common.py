"""Shared by the benchmarks: timing a child process with its own peak RSS, starting a Prefect server."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

PYTHON = sys.executable
BIN = Path(PYTHON).parent


GNU_TIME = "/usr/bin/time"


def measure(argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``argv``.

    The peak RSS comes from GNU time (a small C program): Linux keeps ru_maxrss across exec, so a child forked
    straight from this (larger) Python process would report at least this process's size.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        wrapped = [GNU_TIME, "-f", "%M", "-o", report.name, *argv] if os.path.exists(GNU_TIME) else list(argv)
        started = time.perf_counter()
        proc = subprocess.run(wrapped, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{argv} exited with {proc.returncode}")
        text = report.read().strip().splitlines()
    rss_kb = float(text[-1]) if text else float("nan")
    return wall, rss_kb / 1024


def median_of(argv: Sequence[str], runs: int, env: dict[str, str] | None = None) -> tuple[float, float]:
    samples = [measure(argv, env) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(extra)
    return env


@contextmanager
def prefect_server() -> Iterator[str]:
    """A real `prefect server start` on 127.0.0.1 with a throw-away SQLite database; yields the API URL."""
    home = Path(tempfile.mkdtemp(prefix="bench-prefect-"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = base_env(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
                   PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home}/prefect.db")
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("prefect server did not start")
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
