from __future__ import annotations

import sys
from pathlib import Path

# tests import their helpers as `tests.helpers`
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrefectServer:
    api_url: str
    home: Path
    database: Path

    def client_env(self, **extra: str) -> dict[str, str]:
        """Environment for a CLI run against this server (Prefect mode)."""
        from tests.helpers import clean_env

        env = clean_env(PREFECT_API_URL=self.api_url, PREFECT_HOME=str(self.home / "client"),
                        PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_LOGGING_TO_API_BATCH_INTERVAL="0.3")
        env.update(extra)
        return env

    def post(self, path: str, body: dict) -> list[dict[str, Any]]:
        response = httpx.post(f"{self.api_url}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def get(self, path: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.api_url}{path}", timeout=30)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real `prefect server start` on 127.0.0.1 with its own SQLite database, for the whole session."""
    home = tmp_path_factory.mktemp("prefect-server")
    database = home / "prefect.db"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
               PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{database}",
               PREFECT_SERVER_API_HOST="127.0.0.1", PREFECT_SERVER_API_PORT=str(port))
    prefect = Path(sys.executable).with_name("prefect")
    log = (home / "server.log").open("w")
    proc = subprocess.Popen([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"prefect server did not start: {(home / 'server.log').read_text()[-2000:]}")
        time.sleep(0.3)
    try:
        yield PrefectServer(api, home, database)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
        log.close()
