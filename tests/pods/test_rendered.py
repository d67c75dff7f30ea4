"""What ``render`` prints for real specs, played by podman: the main example against real services on this
machine, the seed's permission exercise, and the Job and CronJob forms. A manifest counts when it runs."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import psycopg
import pytest
import yaml

from tests.helpers import git, run_cli, write_spec
from tests.pods.images import Images, build_app_image, podman, podman_env
from tests.pods.play import Adapt, play, remove_volumes
from tests.vaultserver import VaultState, vault_server

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "myapp.yaml"
SA_TOKEN = "eyJ.podman-sa-canary.sig"
DB_PASSWORD = "db-pw-canary-41c7"


@pytest.fixture(scope="module")
def app_image(images: Images) -> Iterator[str]:
    tag = build_app_image(images.init, ROOT / "examples" / "myapp", f"localhost/myapp-init:t{uuid.uuid4().hex[:6]}")
    try:
        yield tag
    finally:
        podman("rmi", "-f", tag, check=False)


@pytest.fixture()
def http_services() -> Iterator[str]:
    """The config server and the search cluster's health, on one 127.0.0.1 port."""
    answers = {"/config/myapp": b"database:\n  host: db.internal\n  port: 5432\nfeature_flags: [uploads]\n",
               "/_cluster/health": b'{"cluster_name": "search", "status": "yellow"}'}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def site_repository(directory: Path) -> Path:
    """The site the example clones and builds: a package.json whose build writes dist/."""
    repo = directory / "mysite"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "index.html").write_text("<h1>mysite</h1>\n")
    (repo / "package.json").write_text(json.dumps({
        "name": "mysite", "version": "1.0.0", "private": True,
        "scripts": {"build": "mkdir -p dist && cp index.html dist/ && node -e \"console.log('built')\""}}))
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "site", cwd=repo)
    # git serves a local repository only to its owner ("dubious ownership"): owned by the pod's user, as a
    # git server's repositories are by the server's
    for path in [repo, *repo.rglob("*")]:
        os.chown(path, 10001, 10001, follow_symlinks=False)
    return repo


def podman_secret(name: str, values: dict[str, str]) -> None:
    """What ``kubectl create secret generic`` makes, for podman 4.3: kube play cannot read a Secret document,
    but a podman secret of a JSON object of key to base64 value serves envFrom.secretRef."""
    podman("secret", "rm", name, check=False)
    body = json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in values.items()})
    subprocess.run(["podman", "secret", "create", name, "-"], input=body, text=True, check=True,
                   capture_output=True, env=podman_env())


APP = ["sh", "-c", "\n".join([
    "echo \"CONFIG $(tr '\\n' ' ' < /config/app.yaml)\"",
    "echo \"SECRETS $(stat -c '%a %u' /secrets/app-secrets.json) $(python -c 'import json; "
    "print(sorted(json.load(open(\"/secrets/app-secrets.json\"))))')\"",
    "echo \"DIRS $(stat -c '%a' /data/uploads) $(stat -c '%a' /data/logs) $(stat -c '%a' /data/logs/app.log)\"",
    "echo \"CHECKOUT $(cat /repo/index.html)\"",
    "echo \"BUILT $(cat /repo/dist/index.html)\"",
    "python -c 'import json; print(\"STATUS\", json.dumps(json.load(open(\"/status/result.json\"))))'",
    "echo APP-DONE"])]


def test_the_main_example_runs_in_a_pod_against_real_services(
        images: Images, app_image: str, pg: Any, redis_factory: Any, http_services: str, tmp_path: Path) -> None:
    """examples/myapp.yaml, rendered with its variables (a Secret for the database URL, literals for the rest),
    its migrations (--files) and its own image (npm), played by podman with PostgreSQL, Redis, Vault (the
    stand-in), the config server, the search cluster's health and a git repository on this machine: the init
    container exits 0, the app sees everything it was promised; a second start changes nothing."""
    redis = redis_factory()
    origin = site_repository(tmp_path)
    token = tmp_path / "serviceaccount"
    token.mkdir()
    (token / "token").write_text(SA_TOKEN)
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE myapp LOGIN PASSWORD '{DB_PASSWORD}'")
        conn.execute("CREATE DATABASE myapp OWNER myapp")
    database_url = f"postgresql://myapp:{DB_PASSWORD}@127.0.0.1:{pg.port}/myapp"
    state = VaultState(kubernetes_roles={("kubernetes", "myapp"): (SA_TOKEN, ["secret/data/myapp"])})
    state.put_kv2("secret/myapp", {"api_key": "k-1", "db_password": DB_PASSWORD, "redis_password": "r-1"})
    secret = f"myapp-env-{uuid.uuid4().hex[:6]}"
    prefix = f"m{uuid.uuid4().hex[:6]}-"
    with vault_server(state) as vault:
        podman_secret(secret, {"DATABASE_URL": database_url})
        rendered = run_cli("render", "init-container", str(EXAMPLE), "--image", app_image, "--app-image", app_image,
                           "--env-from-secret", secret, "--env", f"VAULT_ADDR={vault.address}",
                           "--env", f"REDIS_URL={redis.url}", "--env", f"SEARCH_URL={http_services}",
                           "--env", f"CONFIG_URL={http_services}/config/myapp",
                           "--env", "GIT_REPO=file:///srv/mysite",
                           "--files", f"{ROOT / 'examples' / 'myapp' / 'migrations'}:/migrations")
        assert rendered.code == 0, rendered.stderr
        assert rendered.stderr == "", rendered.stderr  # every variable and path is provided
        adapt = Adapt(prefix=prefix, app=APP, host_network=True, host_paths={
            "/var/run/secrets/kubernetes.io/serviceaccount": str(token), "/srv/mysite": str(origin)})
        try:
            first = play(rendered.stdout, adapt, tmp_path, until="APP-DONE")
            second = play(rendered.stdout, adapt, tmp_path, until="APP-DONE")
        finally:
            remove_volumes(prefix)
            podman("secret", "rm", secret, check=False)
    for played in (first, second):
        lines = played.lines
        assert "APP-DONE" in lines, lines[-40:]
        assert DB_PASSWORD not in "\n".join(lines)  # the canary: no secret in any log line
        show = {line.partition(" ")[0]: line.partition(" ")[2] for line in lines
                if line.split(" ", 1)[0] in ("CONFIG", "SECRETS", "DIRS", "CHECKOUT", "BUILT", "STATUS")}
        assert "host: db.internal" in show["CONFIG"], show
        assert show["SECRETS"] == "400 10001 ['api_key', 'db_password', 'redis_password']", show
        assert show["DIRS"] == "777 755 666", show
        assert show["CHECKOUT"] == show["BUILT"] == "<h1>mysite</h1>", show
        status = json.loads(show["STATUS"])
        assert status["status"] == "succeeded", status
        assert {s["name"]: s["status"] for s in status["steps"]} == {
            name: "succeeded" for name in ("wait-for-services", "secrets", "migrate", "config", "validate-secrets",
                                           "permissions", "clone", "build")}
    # the memory limit render writes holds twice the run's measured peak (prefect-init and its largest child
    # together: steps run at the same time)
    init = next(d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] == "Deployment"
                )["spec"]["template"]["spec"]["initContainers"][0]
    limit_mb = int(init["resources"]["limits"]["memory"].removesuffix("Mi"))
    peak = json.loads({line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in first.lines
                       if line.startswith("STATUS ")}["STATUS"])["peak_memory_mb"]
    print(f"myapp's init run in its container: peak {peak}, limit {limit_mb} MiB")
    assert 2 * (peak["prefect_init"] + peak["largest_process"]) <= limit_mb, (peak, limit_mb)
    with psycopg.connect(database_url) as conn:
        history = conn.execute("SELECT version, script FROM prefect_init_schema_history ORDER BY installed_rank"
                               ).fetchall()
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert [tuple(r) for r in history] == [("1", "V1__users.sql"), ("2", "V2__uploads.sql")]  # once, not twice
    assert {"users", "uploads"} <= tables
    second_log = "\n".join(second.lines)
    assert "[migrate] up to date" in second_log or "nothing to apply" in second_log, second_log[-3000:]


SEED = """
    version: 1
    name: {name}
    status_file: /status/result.json
    steps:
      - name: permissions
        files:
          dirs:
            - {{path: /data/uploads, mode: "0777", owner: "1000:1000"}}
            - {{path: /data/logs, mode: "0755", owner: "1000:1000"}}
          files:
            - {{path: /data/logs/app.log, mode: "0666", owner: "1000:1000"}}
    """


def test_the_seed_permission_exercise_runs(images: Images, tmp_path: Path) -> None:
    """Directories 0777 and 0755 and a log file 0666, owned by 1000:1000: the init container (root, three
    capabilities) prepares them, the app container as uid 1000 writes into them."""
    name = f"perm{uuid.uuid4().hex[:6]}"
    rendered = run_cli("render", "init-container", str(write_spec(tmp_path, SEED.format(name=name))),
                       "--image", images.init, "--app-image", images.init)
    assert rendered.code == 0 and "runs as root" in rendered.stderr, rendered.stderr
    app = ["sh", "-c", "id -u; echo upload > /data/uploads/a.txt && echo UPLOAD-OK; echo line >> /data/logs/app.log "
           "&& echo LOG-OK; touch /data/logs/new.log && echo NEWLOG-OK; stat -c 'OWN %n %a %u:%g' /data/uploads "
           "/data/logs /data/logs/app.log; echo APP-DONE"]
    prefix = f"{name}-"
    try:
        played = play(rendered.stdout, Adapt(prefix=prefix, app=app, app_user=1000), tmp_path, until="APP-DONE")
    finally:
        remove_volumes(prefix)
    lines = played.lines
    assert "1000" in lines and {"UPLOAD-OK", "LOG-OK", "NEWLOG-OK"} <= set(lines), lines
    assert {"OWN /data/uploads 777 1000:1000", "OWN /data/logs 755 1000:1000",
            "OWN /data/logs/app.log 666 1000:1000"} <= set(lines), lines


@pytest.mark.parametrize("kind", ["job", "cronjob"])
def test_the_job_and_the_cronjob_run_as_the_pod_of_their_template(images: Images, tmp_path: Path, kind: str) -> None:
    name = f"{kind}{uuid.uuid4().hex[:6]}"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        steps:
          - name: dirs
            files: {{dirs: [{{path: /data/out, mode: "0755"}}]}}
          - name: hello
            command: [sh, -c, "echo ran as $(id -u) > /data/out/ran && cat /data/out/ran"]
        """)
    extra = ("--schedule", "*/5 * * * *") if kind == "cronjob" else ()
    rendered = run_cli("render", kind, str(spec), "--image", images.init, *extra)
    assert rendered.code == 0, rendered.stderr
    prefix = f"{name}-"
    try:
        played = play(rendered.stdout, Adapt(prefix=prefix), tmp_path)
    finally:
        remove_volumes(prefix)
    assert played.exit_codes == {"prefect-init": 0}, (played.exit_codes, played.lines[-20:])
    assert any(line.endswith("[hello] ran as 10001") for line in played.lines), played.lines
