"""Under faults: a full volume, a read-only volume, a killed writer. Real tmpfs mounts (root is available on these
machines and in CI), the size of a small emptyDir with a sizeLimit.

Every writer must leave no temporary file, keep the old file intact, say in one line which path failed and why,
and never print a traceback; the status file and the termination log are best effort (a warning, the steps'
exit code)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.helpers import CLI, clean_env, run_cli, write_spec

BIG = "key: " + "x" * 100_000 + "\n"  # more than the 64 KiB volume holds


@contextmanager
def tmpfs(directory: Path, size: str = "64k") -> Iterator[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs", str(directory)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): the fault tests did not run")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)


@pytest.fixture()
def full(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB volume holding an old app.yaml."""
    with tmpfs(tmp_path / "vol") as volume:
        (volume / "app.yaml").write_text("old: true\n")
        yield volume


@pytest.fixture()
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A volume mounted read-only, holding an old app.yaml."""
    with tmpfs(tmp_path / "ro") as volume:
        (volume / "app.yaml").write_text("old: true\n")
        subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
        yield volume


def fill(volume: Path) -> None:
    """Fill the volume to the last byte; a further write then fails with ENOSPC (checked)."""
    with (volume / "filler").open("ab", buffering=0) as handle:
        try:
            while True:
                handle.write(b"f" * 1024)
        except OSError:
            pass
    with pytest.raises(OSError):  # positive control: the volume really is full
        (volume / "more").write_bytes(b"m" * 4096)
    (volume / "more").unlink(missing_ok=True)


def leftovers(volume: Path) -> list[str]:
    return sorted(p.name for p in volume.iterdir() if p.name.endswith(".tmp") or ".tmp" in p.name)


def one_failure_line(stderr: str, path: Path, cause: str) -> None:
    assert "Traceback" not in stderr, stderr
    closing = stderr.strip().splitlines()[-1]
    assert f"{path}: {cause}" in closing, closing


FULL = "no space left on device (the volume is full)"
READ_ONLY = "read-only file system (the volume is mounted read-only)"


@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_config_step(fault: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    volume: Path = request.getfixturevalue(fault)
    source = tmp_path / "big.yaml"
    source.write_text(BIG)
    spec = write_spec(tmp_path, f"""
        version: 1
        name: cfg
        steps:
          - name: config
            retries: 0
            config: {{url: "file://{source}", dest: {volume}/app.yaml, format: yaml}}
        """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    one_failure_line(result.stderr, volume / "app.yaml", FULL if fault == "full" else READ_ONLY)
    assert (volume / "app.yaml").read_text() == "old: true\n"
    assert leftovers(volume) == []


@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_files_content(fault: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    volume: Path = request.getfixturevalue(fault)
    spec = write_spec(tmp_path, f"""
        version: 1
        name: files
        steps:
          - name: files
            files:
              files: [{{path: {volume}/app.yaml, content: "{'y' * 100_000}"}}]
        """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    one_failure_line(result.stderr, volume / "app.yaml", FULL if fault == "full" else READ_ONLY)
    assert (volume / "app.yaml").read_text() == "old: true\n"
    assert leftovers(volume) == []


@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_vault_step(fault: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    from tests.vaultserver import VaultState, vault_server

    volume: Path = request.getfixturevalue(fault)
    state = VaultState()
    state.tokens["hvs.fault-token"] = ["secret/"]
    state.put_kv2("secret/app", {"big": "z" * 100_000})
    (tmp_path / "token").write_text("hvs.fault-token")
    with vault_server(state) as vault:
        spec = write_spec(tmp_path, f"""
            version: 1
            name: vault
            steps:
              - name: secrets
                retries: 0
                vault:
                  address: {vault.address}
                  auth: {{token_file: {tmp_path / 'token'}}}
                  secrets:
                    - {{path: secret/data/app, dest: {volume}/app.yaml, format: yaml}}
            """)
        result = run_cli("run", str(spec))
    assert result.code == 1
    one_failure_line(result.stderr, volume / "app.yaml", FULL if fault == "full" else READ_ONLY)
    assert (volume / "app.yaml").read_text() == "old: true\n"
    assert leftovers(volume) == []
    assert "zzzz" not in result.stderr


@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_git_checkout(fault: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    volume: Path = request.getfixturevalue(fault)
    origin = tmp_path / "origin"
    subprocess.run(["git", "init", "-q", "-b", "main", str(origin)], check=True)
    (origin / "big.bin").write_bytes(os.urandom(300_000))  # incompressible: does not fit
    subprocess.run(["git", "-C", str(origin), "add", "."], check=True)
    subprocess.run(["git", "-C", str(origin), "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "big"],
                   check=True)
    spec = write_spec(tmp_path, f"""
        version: 1
        name: git
        steps:
          - name: clone
            retries: 0
            git: {{repo: "file://{origin}", ref: main, dest: {volume}/repo}}
        """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    closing = result.stderr.strip().splitlines()[-1]
    assert (FULL if fault == "full" else READ_ONLY) in closing, closing
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in volume.iterdir()) == ["app.yaml"]  # no half checkout, no temporary directory


@pytest.mark.parametrize("fault", ["full", "read_only"])
def test_status_file_is_best_effort(fault: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    volume: Path = request.getfixturevalue(fault)
    if fault == "full":
        fill(volume)
    spec = write_spec(tmp_path, f"""
        version: 1
        name: status
        status_file: {volume}/result.json
        steps:
          - name: a
            command: [echo, ok]
        """)
    result = run_cli("run", str(spec))
    assert result.code == 0, result.output  # the steps' outcome
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    cause = FULL if fault == "full" else READ_ONLY
    assert warnings == [f"warning: the status file was not written: {volume}/result.json: {cause}"]
    assert "Traceback" not in result.stderr
    assert leftovers(volume) == [] and not (volume / "result.json").exists()


def test_termination_log_on_a_full_volume(full: Path, tmp_path: Path) -> None:
    log = full / "termination-log"
    log.touch()
    fill(full)
    spec = write_spec(tmp_path, """
        version: 1
        name: term
        steps:
          - name: a
            retries: 0
            command: [sh, -c, "exit 3"]
        """)
    result = run_cli("run", str(spec), env=clean_env(PREFECT_INIT_TERMINATION_LOG=str(log)))
    assert result.code == 1  # the step's failure, not a crash
    assert f"warning: the termination log was not written: {log}: {FULL}" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_a_missing_parent_directory_is_created(tmp_path: Path) -> None:
    source = tmp_path / "small.yaml"
    source.write_text("a: 1\n")
    spec = write_spec(tmp_path, f"""
        version: 1
        name: parents
        steps:
          - name: config
            config: {{url: "file://{source}", dest: {tmp_path}/new/deeper/app.yaml}}
        """)
    old = os.umask(0o022)
    try:
        result = run_cli("run", str(spec))
    finally:
        os.umask(old)
    assert result.code == 0, result.output
    assert (tmp_path / "new" / "deeper" / "app.yaml").read_text() == "a: 1\n"
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o755


def test_sigkill_during_a_large_download_leaves_at_most_the_temporary_file(full: Path, tmp_path: Path) -> None:
    """Killed mid-download: the old file stays whole; the next run removes the leftover and succeeds."""
    from tests.httpservers import serve

    chunk = b"k: " + b"v" * 20_000 + b"\n"

    class Slow:
        def __init__(self) -> None:
            self.slow = True

        def __call__(self, n: int) -> tuple[int, bytes, dict[str, str | None]]:
            return 200, chunk, {"Content-Type": "application/yaml"}

    script = Slow()
    with serve(script, delay=30) as server:  # sends the headers, then waits 30 s before the body
        spec = write_spec(tmp_path, f"""
            version: 1
            name: kill
            steps:
              - name: config
                config: {{url: "{server.url('/app.yaml')}", dest: {full}/app.yaml}}
            """)
        proc = subprocess.Popen([*CLI, "run", str(spec)], env=clean_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not leftovers(full):
            assert time.monotonic() < deadline and proc.poll() is None, "the download never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert (full / "app.yaml").read_text() == "old: true\n"
    assert len(leftovers(full)) == 1  # at most the temporary file
    with serve(lambda n: (200, chunk, {"Content-Type": "application/yaml"})) as fast:
        spec.write_text(spec.read_text().replace(server.url("/app.yaml"), fast.url("/app.yaml")))
        result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert (full / "app.yaml").read_bytes() == chunk
    assert leftovers(full) == []
