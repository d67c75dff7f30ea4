"""A real `prefect server start` on 127.0.0.1 with its own SQLite database (tests and benchmarks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


class ServerProcess:
    """The server's whole process group: started, stopped, killed, paused (SIGSTOP: a black hole that accepts
    connections and never answers) and resumed by the tests that need an API to go away."""

    def __init__(self, home: Path, database_url: str | None = None, prefect: Path | str | None = None,
                 **settings: str) -> None:
        """``prefect``: the executable that starts the server (another venv's, for an older server); by default
        the one beside this interpreter."""
        self.prefect = Path(prefect) if prefect else Path(sys.executable).with_name("prefect")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.home = home
        self.api = f"http://127.0.0.1:{self.port}/api"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
                   PREFECT_API_DATABASE_CONNECTION_URL=database_url or f"sqlite+aiosqlite:///{home / 'prefect.db'}")
        env.update(settings)
        self.env = env
        self.log = home / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 120) -> str:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [str(self.prefect), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + wait
        while True:
            try:
                if httpx.get(f"{self.api}/health", timeout=2).status_code == 200:
                    return self.api
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.3)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signum)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGCONT)
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


@contextmanager
def prefect_server_process(home: Path, **settings: str) -> Iterator[str]:
    """Start the server with ``home`` as PREFECT_HOME and ``home/prefect.db``; yield the API URL."""
    server = ServerProcess(home, **settings)
    try:
        yield server.start()
    finally:
        server.stop()


TRANSIENT = {"Pending", "Running", "Retrying", "AwaitingRetry"}


def settled_task_runs(api: str, flow_run_ids: list[str], count: int, limit: float = 30) -> list[dict[str, Any]]:
    """The task runs of these flow runs once there are ``count`` and none is in a passing state. A mirrored
    run's task runs are recorded from its events by the server's task run recorder, a moment after the run."""
    deadline = time.monotonic() + limit
    while True:
        runs = httpx.post(f"{api}/task_runs/filter", json={"flow_runs": {"id": {"any_": flow_run_ids}},
                                                            "limit": 200}, timeout=30).json()
        if len(runs) >= count and not any(r["state_name"] in TRANSIENT for r in runs):
            return list(runs)
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(runs)} of {count} task runs settled: "
                                 f"{sorted((r['name'], r['state_name']) for r in runs)}")
        time.sleep(0.2)
