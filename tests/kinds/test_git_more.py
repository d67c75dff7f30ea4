"""git over ssh (a real sshd on 127.0.0.1, started by the test with a throw-away host key), submodules, sparse
checkouts and a pinned commit, against real repositories."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.helpers import git as _git
from tests.kinds.test_git import _run

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@pytest.fixture()
def sshd(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """sshd on a free port of 127.0.0.1, key login only, for the current user (root here and in CI)."""
    if not Path(SSHD).exists():
        pytest.fail("sshd is not installed: .ci/run installs Debian's openssh-server")
    home = tmp_path / "ssh"
    home.mkdir()
    for name in ("host", "client", "other"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / name)], check=True)
    (home / "authorized_keys").write_text((home / "client.pub").read_text())
    (home / "authorized_keys").chmod(0o600)
    port = free_port()
    config = home / "sshd_config"
    config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host'}\nPidFile {home / 'pid'}\n"
                      f"AuthorizedKeysFile {home / 'authorized_keys'}\nPasswordAuthentication no\n"
                      "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                            stderr=(home / "log").open("w"))
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (home / "log").read_text()
            time.sleep(0.05)
    host_key = (home / "host.pub").read_text().split()
    (home / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (home / "wrong_known_hosts").write_text(
        f"[127.0.0.1]:{port} {' '.join((home / 'other.pub').read_text().split()[:2])}\n")
    try:
        yield {"port": port, "key": home / "client", "known_hosts": home / "known_hosts",
               "wrong": home / "wrong_known_hosts", "log": home / "log"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_ssh_remote_with_the_right_and_a_wrong_known_hosts(tmp_path: Path, origin: Path, sshd: dict[str, Any]) -> None:
    import os

    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    repo = f"ssh://{user}@127.0.0.1:{sshd['port']}{origin}"
    key_text = sshd["key"].read_text()
    good = {"repo": repo, "ref": "main", "dest": "site", "ssh_key": {"file": str(sshd["key"])},
            "known_hosts": {"file": str(sshd["known_hosts"])}}
    code, error, stderr = _run(tmp_path, good)
    assert code == 0, error + (sshd["log"]).read_text()[-1000:]
    assert (tmp_path / "site" / "index.html").read_text() == "v2\n"
    status = json.loads((tmp_path / "status.json").read_text())["steps"][0]
    assert status["outputs"] == {"revision": _git("rev-parse", "HEAD", cwd=origin), "ref": "main"}
    assert not list(Path("/tmp").glob("prefect-init-ssh-*.key"))  # the key's temporary copy is gone
    for line in key_text.splitlines()[1:-1]:
        assert line not in stderr

    bad = {**good, "dest": "site2", "known_hosts": {"file": str(sshd["wrong"])}}
    code, error, _ = _run(tmp_path, bad)
    assert code == 1
    assert "ssh host key verification failed" in error, error
    assert not (tmp_path / "site2").exists()


def test_an_ssh_remote_without_known_hosts_is_a_spec_error(tmp_path: Path) -> None:
    from tests.helpers import run_cli, write_spec

    spec = write_spec(tmp_path, """
        version: 1
        name: ssh
        steps:
          - name: clone
            git: {repo: "git@github.com:myorg/site.git", ref: main, dest: /repo, ssh_key: {file: /secrets/key}}
        """)
    result = run_cli("check", str(spec))
    assert result.code == 2
    assert "an ssh remote needs known_hosts" in result.stderr


def test_submodules_recursive(tmp_path: Path, origin: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    _git("init", "-q", "-b", "main", cwd=lib)
    (lib / "lib.txt").write_text("library\n")
    _git("add", ".", cwd=lib)
    _git("commit", "-q", "-m", "lib", cwd=lib)
    _git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(lib), "vendor/lib", cwd=origin)
    _git("commit", "-q", "-m", "add lib", cwd=origin)
    code, error, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "main", "dest": "site", "submodules": True})
    assert code == 0, error
    assert (tmp_path / "site" / "vendor" / "lib" / "lib.txt").read_text() == "library\n"
    code, error, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "main", "dest": "plain"})
    assert code == 0 and not (tmp_path / "plain" / "vendor" / "lib" / "lib.txt").exists()  # only when asked


def test_sparse_checkout(tmp_path: Path, origin: Path) -> None:
    for directory in ("app", "docs", "infra"):
        (origin / directory).mkdir()
        (origin / directory / "file.txt").write_text(directory)
    _git("add", ".", cwd=origin)
    _git("commit", "-q", "-m", "dirs", cwd=origin)
    code, error, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": "main", "dest": "site",
                                     "sparse": ["app/", "infra/"]})
    assert code == 0, error
    site = tmp_path / "site"
    assert (site / "app" / "file.txt").exists() and (site / "infra" / "file.txt").exists()
    assert not (site / "docs").exists()


def test_a_pinned_full_sha_is_verified(tmp_path: Path, origin: Path) -> None:
    first = _git("rev-list", "--max-parents=0", "HEAD", cwd=origin)
    code, error, _ = _run(tmp_path, {"repo": f"file://{origin}", "ref": first, "dest": "site"})
    assert code == 0, error
    assert json.loads((tmp_path / "status.json").read_text())["steps"][0]["outputs"]["revision"] == first
    assert (tmp_path / "site" / "index.html").read_text() == "v1\n"
