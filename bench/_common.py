"""Shared by the benchmarks: timing a child process with its own peak RSS, starting a Prefect server."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

PYTHON = sys.executable
BIN = Path(PYTHON).parent


GNU_TIME = "/usr/bin/time"


def measure_cpu(argv: Sequence[str], env: dict[str, str] | None = None,
                cwd: str | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, the process and its children) and peak RSS (MB) of one run.

    CPU and peak RSS come from GNU time (a small C program): Linux keeps ru_maxrss across exec, so a child forked
    straight from this (larger) Python process would report at least this process's size.
    """
    with tempfile.NamedTemporaryFile("r") as report:
        wrapped = [GNU_TIME, "-f", "%U %S %M", "-o", report.name, *argv] if os.path.exists(GNU_TIME) else list(argv)
        started = time.perf_counter()
        proc = subprocess.run(wrapped, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError(f"{argv} exited with {proc.returncode}")
        text = report.read().strip().splitlines()
    user, system, rss_kb = (float(x) for x in text[-1].split()) if text else (float("nan"),) * 3
    return wall, user + system, rss_kb / 1024


def measure(argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one run of ``argv`` (see :func:`measure_cpu`)."""
    wall, _, rss = measure_cpu(argv, env, cwd)
    return wall, rss


def median_of(argv: Sequence[str], runs: int, env: dict[str, str] | None = None,
              cwd: str | None = None) -> tuple[float, float]:
    samples = [measure(argv, env, cwd) for _ in range(runs)]
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(extra)
    return env


@contextmanager
def prefect_server() -> Iterator[str]:
    """A real `prefect server start` on 127.0.0.1 with a throw-away SQLite database; yields the API URL."""
    from tests.prefectserver import prefect_server_process

    with prefect_server_process(Path(tempfile.mkdtemp(prefix="bench-prefect-"))) as url:
        yield url


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
