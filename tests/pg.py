"""Real PostgreSQL for the tests, from the binaries the `pgserver` package ships.

pgserver itself listens on a Unix socket only; pods reach their database over TCP with a password, so the
clusters here are initialized once per session (SCRAM password auth) and each test's cluster is a copy of that
template, started with `postgres -h 127.0.0.1 -p PORT`. As root, postgres refuses to run: it then runs as the
`pgserver` system user, as pgserver does.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import psycopg
from pgserver._commands import POSTGRES_BIN_PATH

PASSWORD = "pg-test-pw-4242"


def _user() -> str | None:
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


def _give(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for parent in path.parents:  # let the user traverse down to it
        if parent != Path("/"):
            parent.chmod(parent.stat().st_mode | 0o055)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


def init_template(directory: Path) -> Path:
    """initdb once: a data directory with user `postgres`, password :data:`PASSWORD`, SCRAM over TCP."""
    user = _user()
    directory.mkdir(parents=True, exist_ok=True)
    pwfile = directory / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    _give(directory, user)
    data = directory / "data"
    subprocess.run([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                    f"--pwfile={pwfile}", "--encoding=utf8", "--no-sync"], check=True, capture_output=True,
                   user=user)
    return data


class Cluster:
    def __init__(self, template: Path, directory: Path, port: int) -> None:
        self.user = _user()
        self.directory = directory
        self.data = directory / "data"
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copytree(template, self.data, symlinks=True)
        (self.data / "postmaster.pid").unlink(missing_ok=True)
        _give(directory, self.user)

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres:{PASSWORD}@127.0.0.1:{self.port}/postgres"

    def start(self, wait: bool = True) -> None:
        self.proc = subprocess.Popen(
            [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.port),
             "-k", str(self.directory), "-c", "fsync=off", "-c", "max_connections=100"],
            stdout=subprocess.DEVNULL, stderr=(self.directory / "log").open("ab"), user=self.user)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT: fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
