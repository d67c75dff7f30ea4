from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.helpers import CLI, clean_env, run_cli, write_spec


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_dirs_and_files_with_modes_idempotent(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: perms
        steps:
          - name: permissions
            files:
              dirs:
                - {path: data/uploads, mode: "0777"}
                - {path: data/logs, mode: "0750"}
              files:
                - {path: data/logs/app.log, mode: "0666"}
                - {path: data/banner, content: "hello\\n", mode: "0444"}
    """)
    first = run_cli("run", str(spec))
    assert first.code == 0, first.output
    assert _mode(tmp_path / "data/uploads") == 0o777
    assert _mode(tmp_path / "data/logs") == 0o750
    assert _mode(tmp_path / "data/logs/app.log") == 0o666
    assert (tmp_path / "data/banner").read_text() == "hello\n"
    log = tmp_path / "data/logs/app.log"
    assert _mode(tmp_path / "data/banner") == 0o444
    log.write_text("existing log line\n")
    os.chmod(tmp_path / "data/uploads", 0o700)
    second = run_cli("run", str(spec))
    assert second.code == 0
    assert _mode(tmp_path / "data/uploads") == 0o777  # the mode on disk, put back
    assert "mode 0777" in second.stderr and "created" not in second.stderr
    assert log.read_text() == "existing log line\n"  # an existing file is kept
    third = run_cli("run", str(spec))
    assert third.code == 0 and "already in place" in third.stderr
    modes = {p: _mode(tmp_path / p) for p in ("data/uploads", "data/logs", "data/logs/app.log", "data/banner")}
    assert modes == {"data/uploads": 0o777, "data/logs": 0o750, "data/logs/app.log": 0o666, "data/banner": 0o444}


def test_owner_is_applied(tmp_path: Path) -> None:
    uid, gid = os.getuid(), os.getgid()
    target_uid = 1000 if uid == 0 else uid
    spec = write_spec(tmp_path, f"""
        version: 1
        name: owner
        steps:
          - name: own
            files:
              dirs: [{{path: d, owner: "{target_uid}:{gid}"}}]
    """)
    assert run_cli("run", str(spec)).code == 0
    assert (tmp_path / "d").stat().st_uid == target_uid


def test_path_that_is_a_file_fails_clearly(tmp_path: Path) -> None:
    (tmp_path / "d").write_text("")
    spec = write_spec(tmp_path, """
        version: 1
        name: clash
        steps:
          - name: own
            files: {dirs: [{path: d}]}
    """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert "exists and is not a directory" in result.stderr
    assert "attempt 1 failed" not in result.stderr  # final, not retried


def test_unknown_user_is_a_final_error(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: nouser
        status_file: status.json
        steps:
          - name: own
            retries: 3
            retry_delay: 10ms
            files: {dirs: [{path: d, owner: "no-such-user-xyz"}]}
    """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert "no such user or group" in result.stderr
    step = json.loads((tmp_path / "status.json").read_text())["steps"][0]
    assert step["attempts"] == 1 and "attempt 1 failed" not in result.stderr  # final: three retries unused


def test_recursive_sets_owner_and_mode_on_what_the_directory_already_holds(tmp_path: Path) -> None:
    """As `chown -R 1001:1001 DIR` and `chmod -R 0770 DIR`: what the volume held before the step (a file, a
    subdirectory and a file in it) gets the owner and the mode; a symbolic link pointing out of the directory is
    not followed (its target keeps its owner and mode); a second run changes nothing. Run as root in CI."""
    volume = tmp_path / "volume"
    (volume / "sub").mkdir(parents=True)
    (volume / "old.db").write_text("data")
    (volume / "sub" / "deep.log").write_text("log")
    outside = tmp_path / "outside"
    outside.write_text("not mine")
    os.chmod(outside, 0o600)
    (volume / "link").symlink_to(outside)
    uid = os.getuid()
    owner = 1001 if uid == 0 else uid
    spec = write_spec(tmp_path, f"""
        version: 1
        name: recursive
        steps:
          - name: own
            files:
              dirs: [{{path: volume, owner: "{owner}:{owner if uid == 0 else os.getgid()}", mode: "0770",
                      recursive: true}}]
    """)
    first = run_cli("run", str(spec))
    assert first.code == 0, first.output
    inside = [volume, volume / "sub", volume / "old.db", volume / "sub" / "deep.log"]
    assert {str(p): (p.stat().st_uid, _mode(p)) for p in inside} == {str(p): (owner, 0o770) for p in inside}
    assert (outside.stat().st_uid, _mode(outside)) == (uid, 0o600)
    assert f"mode 0770 under {volume}: 3 entries changed" in first.stderr, first.stderr
    second = run_cli("run", str(spec))
    assert second.code == 0 and "already in place" in second.stderr, second.stderr


def test_recursive_fails_on_a_directory_it_cannot_read() -> None:
    """`chown -R` says so when it cannot read a directory; so does the step, instead of a silent success. Run as
    a user who owns the volume but not a directory in it that only root may read (root reads everything)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root (to make a directory only root reads) and setpriv")
    work = Path(tempfile.mkdtemp(prefix="prefect-init-unreadable-"))
    try:
        os.chmod(work, 0o755)
        volume = work / "volume"
        (volume / "locked" / "inner").mkdir(parents=True)
        (volume / "open").mkdir()
        os.chmod(volume / "locked", 0o750)  # root's, already the mode wanted: the step's user cannot list it
        os.chown(volume, 65534, 65534)
        os.chown(volume / "open", 65534, 65534)
        spec = write_spec(work, """
            version: 1
            name: unreadable
            steps:
              - name: own
                retries: 0
                files:
                  dirs: [{path: volume, mode: "0750", recursive: true}]
        """)
        proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *CLI, "run",
                               str(spec)], capture_output=True, text=True, cwd=work, timeout=60, env=clean_env())
        assert proc.returncode == 1, proc.stderr
        assert f"{volume / 'locked'}: cannot read it to set mode 0750 on what it holds (Permission denied)" in \
            proc.stderr, proc.stderr
    finally:
        shutil.rmtree(work)
