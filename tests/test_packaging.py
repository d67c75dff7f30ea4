"""Test what users install: the wheel, built and installed regularly (not -e), by the Dockerfile's own commands.

A hand-kept package list once shipped a wheel without ``prefect_init.kinds.wait.targets``: every ``wait`` step crashed
in any image while the editable-install suite stayed green. No Docker daemon runs here, so this test runs the
install commands of ``deployments/Dockerfile`` itself, in a fresh virtual environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

from prefect_init.render.dockerfile import BUILD_WHEEL, INIT_REQUIREMENTS, INSTALL_INIT, INSTALL_WHEEL
from tests.conftest import PrefectServer
from tests.helpers import clean_env, source_snapshot, write_spec
from tests.prefectserver import settled_task_runs

ROOT = Path(__file__).resolve().parents[1]

EVERY_KIND = """
version: 1
name: every-kind
steps:
  - name: wait
    wait:
      - tcp: 127.0.0.1:5432
  - name: secrets
    vault:
      address: http://127.0.0.1:8200
      auth: {token_file: /vault/token}
      secrets:
        - {path: secret/data/app, dest: /secrets/app.json}
  - name: config
    config: {url: "http://127.0.0.1:8000/app.yaml", dest: /config/app.yaml}
  - name: validate
    validate: {file: /config/app.yaml, required: [a]}
  - name: migrate
    migrate: {database: "postgresql://app@127.0.0.1/app", dir: /migrations}
  - name: files
    files:
      dirs: [{path: /data, mode: "0755"}]
  - name: git
    git: {repo: "https://example.invalid/x.git", ref: main, dest: /repo}
  - name: command
    command: [echo, hi]
  - name: template
    template: {inline: "x={{ x }}", dest: /config/x.conf, vars: {x: "${steps.command.out}"}}
"""

RUN = """
version: 1
name: installed
steps:
  - name: wait
    wait:
      - tcp: 127.0.0.1:{port}
    timeout: 20s
  - name: files
    files:
      dirs: [{{path: out/data, mode: "0750"}}]
      files: [{{path: out/data/ready, content: "ok\\n"}}]
  - name: command
    command: [sh, -c, "cat data/ready"]
    cwd: out
"""


def shell(command: str, cwd: Path, venv: Path | None = None) -> None:
    env = dict(os.environ)
    bin_dir = venv / "bin" if venv else Path(sys.executable).parent  # that environment's pip comes first
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    result = subprocess.run(["sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{command}: {result.stdout[-2000:]}{result.stderr[-3000:]}"


def test_the_wheel_holds_every_module_and_runs_when_installed(tmp_path: Path) -> None:
    src = source_snapshot(tmp_path / "src")
    wheels = tmp_path / "wheels"
    shell(BUILD_WHEEL.format(wheels=wheels), cwd=src)
    wheel, = wheels.glob("prefect_init-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"prefect_init/{p.relative_to(ROOT / 'prefect_init').as_posix()}"
                for p in (ROOT / "prefect_init").rglob("*.py")}
    for folder in ("tasks", "flows"):
        expected |= {f"prefect_init/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
                     for p in (ROOT / folder).rglob("*.py")}
    assert "prefect_init/kinds/wait/targets/tcp.py" in expected  # the module the hand-kept list once lost
    assert expected - shipped == set(), "modules missing from the wheel"

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    shell(INSTALL_WHEEL.format(wheels=wheels), cwd=tmp_path, venv=venv)
    cli = venv / "bin" / "prefect-init"
    outside = tmp_path / "elsewhere"  # not the checkout: nothing can be imported from the source tree
    outside.mkdir()

    check = subprocess.run([str(cli), "check", str(write_spec(outside, EVERY_KIND, "every.yaml"))],
                           cwd=outside, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    for kind in ("wait", "vault", "config", "validate", "migrate", "files", "git", "command", "template"):
        assert f"  {kind}" in check.stdout

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        spec = write_spec(outside, RUN.format(port=listener.getsockname()[1]), "run.yaml")
        run = subprocess.run([str(cli), "run", str(spec)], cwd=outside, env=clean_env(), capture_output=True,
                             text=True, timeout=120)
    finally:
        listener.close()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert "[command] ok" in run.stderr
    assert (outside / "out" / "data" / "ready").read_text() == "ok\n"
    # and it really ran the installed copy, not the checkout
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import prefect_init.kinds.wait.targets.tcp as m; "
                            "print(m.__file__)"], cwd=outside, capture_output=True, text=True, check=True).stdout
    assert str(venv) in where and str(ROOT) not in where


def test_the_init_install_runs_every_kind_and_prefect_mode_without_prefect(tmp_path: Path,
                                                                           prefect_server: PrefectServer) -> None:
    """The init image's install, by its own commands: no prefect, prefect-kubernetes, SQLAlchemy, asyncpg or
    kubernetes_asyncio; `check` knows every kind, `run` runs, and a run is mirrored into a real Prefect server;
    the commands that need Prefect say so in one line."""
    src = source_snapshot(tmp_path / "src")
    wheels = tmp_path / "wheels"
    shell(BUILD_WHEEL.format(wheels=wheels) + " && " + INIT_REQUIREMENTS.format(wheels=wheels), cwd=src)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    shell(INSTALL_INIT.format(wheels=wheels), cwd=tmp_path, venv=venv)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                               capture_output=True, text=True, check=True).stdout.lower()
    assert "prefect-init==" in installed and "httpx==" in installed  # the positive control
    for heavy in ("prefect==", "prefect-kubernetes==", "sqlalchemy==", "asyncpg==", "kubernetes-asyncio=="):
        assert heavy not in installed, heavy
    cli = venv / "bin" / "prefect-init"
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    check = subprocess.run([str(cli), "check", str(write_spec(outside, EVERY_KIND, "every.yaml"))],
                           cwd=outside, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        spec = write_spec(outside, RUN.format(port=listener.getsockname()[1]).replace(
            "name: installed", "name: init-install"), "run.yaml")
        run = subprocess.run([str(cli), "run", str(spec), "--require-api"], cwd=outside,
                             env=prefect_server.client_env(), capture_output=True, text=True, timeout=120)
    finally:
        listener.close()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "warning" not in run.stderr.lower(), run.stderr
    flow_run, = prefect_server.post("/flow_runs/filter", {"flow_runs": {"name": {"any_": ["init-install"]}}})
    assert flow_run["state_type"] == "COMPLETED"
    tasks = settled_task_runs(prefect_server.api_url, [flow_run["id"]], 3)
    assert sorted(t["name"] for t in tasks) == ["command", "files", "wait"]
    deploy = subprocess.run([str(cli), "deploy", str(spec), "--pool", "p"], cwd=outside,
                            env=prefect_server.client_env(), capture_output=True, text=True, timeout=120)
    assert deploy.returncode == 2
    assert deploy.stderr.strip() == ("prefect-init deploy: needs prefect, which this install leaves out (the init "
                                     "image): use the worker image, or `pip install prefect-init`")
