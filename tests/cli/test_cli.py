"""Mode selection and the command line's contract."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PrefectServer, free_port
from tests.helpers import clean_env, run_cli, write_spec

SPEC = """
version: 1
name: mode
steps:
  - name: a
    command: [echo, a]
"""


@pytest.fixture()
def black_hole() -> Iterator[str]:
    """A port on 127.0.0.1 that accepts connections (listen backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    sock.close()


def test_refused_api_warns_and_runs_locally(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    result = run_cli("run", str(write_spec(tmp_path, SPEC)), env=clean_env(PREFECT_API_URL=url))
    assert result.code == 0, result.output
    assert f"warning: the Prefect API at {url} does not answer; running locally" in result.stderr
    assert "[a] a" in result.stderr


def test_silent_api_falls_back_within_two_seconds(tmp_path: Path, black_hole: str) -> None:
    spec = write_spec(tmp_path, SPEC)
    started = time.monotonic()
    result = run_cli("run", str(spec), env=clean_env(PREFECT_API_URL=black_hole))
    elapsed = time.monotonic() - started
    assert result.code == 0, result.output
    assert "running locally" in result.stderr
    assert elapsed < 2.0 + 0.8, elapsed  # the 1.5 s probe plus the local run itself


def test_require_api_exits_1(tmp_path: Path, black_hole: str) -> None:
    spec = write_spec(tmp_path, SPEC)
    result = run_cli("run", str(spec), "--require-api", env=clean_env(PREFECT_API_URL=black_hole))
    assert result.code == 1
    assert result.stderr.strip() == f"--require-api: the Prefect API at {black_hole} does not answer"
    result = run_cli("run", str(spec), "--require-api")
    assert result.code == 1 and "no Prefect API configured" in result.stderr


def test_local_mode_never_imports_prefect(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC)
    code = (f"import sys; from prefect_init.cli import main; sys.argv=['prefect-init','run',{str(spec)!r}]\n"
            "try:\n main()\nexcept SystemExit as e:\n"
            " assert e.code == 0, e.code\n"
            " bad = sorted(m for m in sys.modules if m.split('.')[0] in ('prefect', 'httpx', 'psycopg', 'hvac'))\n"
            " print('IMPORTED', bad)")
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(), timeout=60)
    assert "IMPORTED []" in proc.stdout, proc.stdout + proc.stderr


def test_api_url_from_the_active_profile(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = f"http://127.0.0.1:{free_port()}/api"
    (home / "profiles.toml").write_text(f'active = "dev"\n[profiles.dev]\nPREFECT_API_URL = "{url}"\n')
    result = run_cli("run", str(write_spec(tmp_path, SPEC)), env=clean_env(PREFECT_HOME=str(home)))
    assert f"the Prefect API at {url} does not answer" in result.stderr


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.code == 0
    assert "run" in result.stdout and "check" in result.stdout



def test_broken_prefect_setting_is_one_warning_not_a_failure(tmp_path: Path, prefect_server: PrefectServer) -> None:
    """A Prefect setting that is wrong must not stop a pod: one warning line, the default, the steps' exit code."""
    spec = write_spec(tmp_path, SPEC)
    result = run_cli("run", str(spec), env=prefect_server.client_env(PREFECT_FLOWS_HEARTBEAT_FREQUENCY="often"))
    assert result.code == 0, result.output
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[0] == ("warning: PREFECT_FLOWS_HEARTBEAT_FREQUENCY='often' is not a number of "
                                             "seconds; heartbeats every 180 s")


def test_version_and_help_in_words() -> None:
    from prefect_init import __version__

    version = run_cli("--version")
    assert version.code == 0 and version.stdout.strip() == f"prefect-init {__version__}"
    top = run_cli("--help")
    assert "Exit codes: 0 success; 1 a step failed" in top.stdout and "PREFECT_API_URL" in top.stdout
    for command in ("check", "run", "render", "deploy", "trigger", "runs", "migrations"):
        shown = run_cli(command, "--help")
        assert shown.code == 0, shown.output
        for python_type in ("<str>", "<list", "<int", "<bool>", "{spec}", "<float"):
            assert python_type not in shown.stdout, (command, python_type, shown.stdout)
    assert "--timeout DURATION" in run_cli("trigger", "--help").stdout
    assert "default: wait as long as the run takes" in run_cli("trigger", "--help").stdout
    assert "--status-file PATH" in run_cli("run", "--help").stdout
    assert "Exit 0 when every required step succeeded" in run_cli("run", "--help").stdout


def test_check_where_the_variables_are_not_set(tmp_path: Path) -> None:
    """In CI, outside the pod: the structure is checked, each unset variable named once, exit 0; a real mistake
    still exits 2."""
    spec = write_spec(tmp_path, """
        version: 1
        name: ci
        steps:
          - name: db
            wait: [{postgres: "${DATABASE_URL}"}]
          - name: migrate
            migrate: {database: "${DATABASE_URL}", dir: /migrations}
          - name: hello
            command: [echo, "${GREETING:-hi}"]
        """)
    strict = run_cli("check", str(spec), env=clean_env())
    assert strict.code == 2 and "DATABASE_URL is not set" in strict.stderr
    relaxed = run_cli("check", str(spec), "--unset-ok", env=clean_env())
    assert relaxed.code == 0, relaxed.output
    assert relaxed.stdout.count("DATABASE_URL: not set here") == 1 and "GREETING" not in relaxed.stdout
    # a variable that is set here is no news: only the unset ones are named
    some_set = run_cli("check", str(spec), "--unset-ok", env=clean_env(GREETING="hello"))
    assert some_set.code == 0 and "DATABASE_URL: not set here" in some_set.stdout  # the control
    assert "GREETING" not in some_set.stdout, some_set.stdout
    all_set = run_cli("check", str(spec), "--unset-ok", env=clean_env(DATABASE_URL="postgresql://app@db/app"))
    assert all_set.code == 0 and "not set here" not in all_set.stdout, all_set.stdout
    broken = write_spec(tmp_path, "version: 1\nname: ci\nsteps:\n  - name: db\n    wait: [{postgres: \"${DB}\"}]\n"
                        "    retries: many\n", name="broken.yaml")
    result = run_cli("check", str(broken), "--unset-ok", env=clean_env())
    assert result.code == 2 and "retries" in result.stderr


def test_render_says_when_it_moves_the_status_file(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "version: 1\nname: st\nstatus_file: out/status.json\nsteps:\n"
                                "  - name: a\n    command: [echo, a]\n")
    result = run_cli("render", "job", str(spec), "--image", "i:1", env=clean_env())
    assert result.code == 0
    assert ("note: status_file out/status.json is relative, and would land in the spec's read-only ConfigMap: "
            "the pod writes /status/result.json instead") in result.stderr
    assert "--status-file" in result.stdout and "/status/result.json" in result.stdout
