"""render compose --into, run by Docker Compose itself (Debian's docker-compose) against podman's Docker API
(``podman system service``, ``DOCKER_HOST``): PostgreSQL and an app; the init service waits for the database,
migrates it, prepares the app's volume and exits 0, and only then does the app start and see the files. With a
failing step, the app never starts: its container is never started (state, not a time window). podman-compose
1.6 with podman 4.3 starts a dependant before its ``service_completed_successfully`` dependency has started, so
it is not what these tests run."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import run_cli
from tests.pods.images import BASE_IMAGE, HERE, Images, built_image, podman, podman_env

SPEC = """\
version: 1
name: shop
steps:
  - name: wait-db
    wait: [{postgres: "postgresql://postgres@db:5432/postgres"}]
    timeout: 2m
  - name: migrate
    after: [wait-db]
    migrate: {database: "postgresql://postgres@db:5432/postgres", dir: /migrations}
  - name: volume
    after: [migrate]
    files:
      dirs: [{path: /data/uploads, mode: "0770", owner: "1000:1000"}]
      files: [{path: /data/ready, mode: "0644", content: "migrated\\n"}]
"""

COMPOSE = """\
services:
  db:
    image: {postgres}
  app:
    image: {base}
    user: "1000:1000"
    depends_on: [db]
    command:
      - sh
      - -c
      - >-
        stat -c 'SEEN %n %a %u:%g' /data/uploads /data/ready;
        echo "READY $$(cat /data/ready)";
        touch /data/uploads/x && echo WRITE-OK;
        echo APP-DONE
    volumes: [appdata:/data]
volumes:
  appdata: {{}}
"""

docker_compose = shutil.which("docker-compose")
needs_compose = pytest.mark.skipif(docker_compose is None,
                                   reason="docker-compose is not installed (tests/pods/setup.sh installs Debian's)")


@pytest.fixture(scope="module")
def postgres_image(images: Images) -> Iterator[str]:
    """Debian's postgresql on the base image (no registry here), built after the init image (one build at a
    time)."""
    with built_image(HERE / "postgres", "postgres") as tag:
        yield tag


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """podman's Docker API (``podman system service``, the tests' containers.conf) on a socket of this module's
    own, for Docker Compose; stopped afterwards. Ready when ``/_ping`` answers (bounded)."""
    sock = tmp_path_factory.mktemp("docker") / "podman.sock"
    service = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{sock}"], env=podman_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not _ping(sock):
            assert service.poll() is None, service.stderr.read().decode()[-2000:] if service.stderr else ""
            assert time.monotonic() < deadline, "podman system service did not answer /_ping within 60 s"
            time.sleep(0.2)
        yield f"unix://{sock}"
    finally:
        service.terminate()
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait(timeout=30)


def _ping(sock: Path) -> bool:
    if not sock.exists():
        return False
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        try:
            conn.connect(str(sock))
            conn.sendall(b"GET /_ping HTTP/1.0\r\nHost: d\r\n\r\n")
            return b"OK" in conn.recv(4096)
        except OSError:
            return False


def compose(directory: Path, project: str, docker_host: str, *args: str,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(docker_compose), "-p", project, "-f", "compose.rendered.yaml", *args], cwd=directory,
                          env={**podman_env(), "DOCKER_HOST": docker_host}, capture_output=True, text=True,
                          timeout=timeout)


def inspect(project: str, service: str) -> dict[str, str] | None:
    """The state of the service's container (Docker Compose 1.x names it ``PROJECT_SERVICE_1``): ``Status``
    (created, running, exited), ``ExitCode``, ``StartedAt``; None when there is no such container."""
    out = podman("inspect", "--format", "{{.State.Status}}|{{.State.ExitCode}}|{{.State.StartedAt}}",
                 f"{project}_{service}_1", check=False)
    if out.returncode != 0:
        return None
    status, code, started = out.stdout.strip().split("|", 2)
    return {"Status": status, "ExitCode": code, "StartedAt": started}


def logs(project: str, service: str) -> str:
    out = podman("logs", f"{project}_{service}_1", check=False)
    return out.stdout + out.stderr


def run_project(directory: Path, project: str, init: str, docker_host: str) -> tuple[
        subprocess.CompletedProcess[str], dict[str, str] | None, str, dict[str, str] | None, str]:
    """``up -d`` (Docker Compose waits there for the init service to complete, and stops when it fails), then
    wait for the app's container to exit when it was started (``podman wait``, bounded); (up's result, init's
    state, its log, the app's state, its log). The project goes down with its volumes."""
    try:
        up = compose(directory, project, docker_host, "up", "-d")
        app = inspect(project, "app")
        if app is not None and app["Status"] != "created":
            podman("wait", f"{project}_app_1", timeout=240)
        return up, inspect(project, init), logs(project, init), inspect(project, "app"), logs(project, "app")
    finally:
        compose(directory, project, docker_host, "down", "-v", timeout=120)


@needs_compose
@pytest.mark.parametrize("broken", [False, True])
def test_the_init_service_migrates_and_the_app_starts_only_after_it(
        images: Images, postgres_image: str, docker_host: str, tmp_path: Path, broken: bool) -> None:
    (tmp_path / "migrations").mkdir()
    (tmp_path / "migrations" / "V1__items.sql").write_text(
        "CREATE TABLE items (id int PRIMARY KEY, name text);\nINSERT INTO items VALUES (1, 'first');\n")
    if broken:
        (tmp_path / "migrations" / "V2__broken.sql").write_text("CREATE TABLE oops (;\n")
    (tmp_path / "init.yaml").write_text(SPEC)
    (tmp_path / "compose.yaml").write_text(COMPOSE.format(postgres=postgres_image, base=BASE_IMAGE))
    rendered = run_cli("render", "compose", "init.yaml", "--image", images.init, "--into", "compose.yaml",
                       "--files", "migrations:/migrations", cwd=tmp_path)
    assert rendered.code == 0, rendered.stderr
    assert "db: the spec reaches it" in rendered.stderr
    (tmp_path / "compose.rendered.yaml").write_text(rendered.stdout)
    project = f"pi{uuid.uuid4().hex[:6]}"
    up, init, init_log, app, app_log = run_project(tmp_path, project, "shop-init", docker_host)
    assert init is not None, (up.stdout[-2000:], up.stderr[-2000:])
    if broken:
        assert up.returncode != 0, up.stderr[-2000:]  # Docker Compose says the dependency failed
        assert (init["Status"], init["ExitCode"]) == ("exited", "1"), (init, init_log[-3000:])
        assert "V2__broken.sql" in init_log, init_log[-3000:]
        # the app was never started: no container, or one created and never run (a zero StartedAt)
        assert app is None or (app["Status"] == "created" and app["StartedAt"].startswith("0001-01-01")), \
            (app, app_log)
        assert "APP-DONE" not in app_log
        return
    assert up.returncode == 0, up.stderr[-3000:]
    assert (init["Status"], init["ExitCode"]) == ("exited", "0"), (init, init_log[-3000:])
    assert "V1__items.sql" in init_log or "applied" in init_log, init_log[-3000:]
    assert app is not None and app["Status"] == "exited", (app, app_log)
    lines = app_log.splitlines()
    assert "APP-DONE" in lines, (app, app_log)
    assert {"SEEN /data/uploads 770 1000:1000", "SEEN /data/ready 644 0:0", "READY migrated", "WRITE-OK"} <= \
        set(lines), lines
