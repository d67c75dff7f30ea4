"""prefect-init deploy against a real `prefect server start` (no worker needed to register a deployment)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import PrefectServer, free_port
from tests.helpers import clean_env, run_cli, write_spec

SPEC = """
version: 1
name: {name}
steps:
  - name: greet
    command: [sh, -c, 'echo "hello ${{WHO:-world}}"']
"""


def deployment(server: PrefectServer, name: str) -> dict | None:
    response = httpx.get(f"{server.api_url}/deployments/name/prefect-init/{name}", timeout=30)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return dict(response.json())


def crons(server: PrefectServer, deployment_id: str) -> list[tuple[str, str]]:
    schedules = server.get(f"/deployments/{deployment_id}/schedules")
    return sorted((s["schedule"]["cron"], s["schedule"]["timezone"]) for s in schedules)


def test_deploy_stores_the_text_and_replaces_schedules(prefect_server: PrefectServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.format(name="cron-app"))
    env = prefect_server.client_env()
    result = run_cli("deploy", str(spec), "--pool", "cron-pool", "--create-pool", "process",
                     "--cron", "*/5 * * * *", "--tag", "team-a", env=env)
    assert result.code == 0, result.output
    assert "deployment prefect-init/cron-app: http://" in result.stdout
    assert "schedules: */5 * * * * (UTC)" in result.stdout
    assert ("next: a worker must serve the pool (prefect worker start --pool cron-pool, with the same "
            "PREFECT_API_URL); then: prefect-init trigger prefect-init/cron-app") in result.stdout
    found = deployment(prefect_server, "cron-app")
    assert found is not None
    assert found["parameters"]["spec_text"] == spec.read_text()  # as written: ${WHO:-world} unexpanded
    assert found["entrypoint"] == "prefect_init.flows.spec_flow:run_spec"
    assert found["work_pool_name"] == "cron-pool"
    assert {"prefect-init", "cron-app", "team-a"} <= set(found["tags"])
    assert crons(prefect_server, found["id"]) == [("*/5 * * * *", "UTC")]

    result = run_cli("deploy", str(spec), "--pool", "cron-pool", "--cron", "0 3 * * *", "--cron", "30 4 * * 1",
                     "--timezone", "Europe/Berlin", env=env)
    assert result.code == 0, result.output
    again = deployment(prefect_server, "cron-app")
    assert again is not None and again["id"] == found["id"]  # updated, not a second deployment
    assert crons(prefect_server, found["id"]) == [("0 3 * * *", "Europe/Berlin"), ("30 4 * * 1", "Europe/Berlin")]


def test_a_literal_password_is_refused_and_nothing_is_created(prefect_server: PrefectServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: leaky
        steps:
          - name: wait
            wait:
              - postgres: postgresql://app:hunter2-canary@db:5432/app
          - name: ok
            wait:
              - postgres: postgresql://app:${DB_PASSWORD}@db:5432/app
        """)
    result = run_cli("deploy", str(spec), "--pool", "leaky-pool", "--create-pool", "process",
                     env=prefect_server.client_env())
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"{spec}:6: steps[0].wait[0].postgres: a literal password in a URL or DSN: write the password (or the "
        "whole URL) as ${VAR}"]
    assert "hunter2-canary" not in result.output
    assert deployment(prefect_server, "leaky") is None
    assert httpx.get(f"{prefect_server.api_url}/work_pools/leaky-pool", timeout=30).status_code == 404


def test_a_keyword_form_dsn_password_is_refused(prefect_server: PrefectServer, tmp_path: Path) -> None:
    """libpq's other form, ``host=... password=...``: the password is as readable in a deployment's parameters."""
    spec = write_spec(tmp_path, """
        version: 1
        name: keyword-dsn
        steps:
          - name: wait
            wait:
              - postgres: host=db port=5432 user=app password=kw-canary dbname=app
          - name: ok
            wait:
              - postgres: host=db user=app password=${DB_PASSWORD} dbname=app
        """)
    result = run_cli("deploy", str(spec), "--pool", "kw-pool", "--create-pool", "process",
                     env=prefect_server.client_env())
    assert result.code == 2, result.output
    assert result.stderr.splitlines() == [
        f"{spec}:6: steps[0].wait[0].postgres: a literal password in a URL or DSN: write the password (or the "
        "whole URL) as ${VAR}"]
    assert "kw-canary" not in result.output
    assert deployment(prefect_server, "keyword-dsn") is None


def test_inline_headers_env_and_passwords_are_refused(prefect_server: PrefectServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: inline
        steps:
          - name: c
            command: [echo]
            env: {NODE_ENV: production, TOKEN: {file: /secrets/token}, OK: "${OK}"}
          - name: g
            git: {repo: "https://example.invalid/x.git", ref: main, dest: /repo, username: u, password: pw-canary}
          - name: h
            wait:
              - http: http://es:9200
                headers: {Authorization: "Bearer token-canary", X-Ref: "Bearer ${TOKEN}"}
        """)
    result = run_cli("deploy", str(spec), "--pool", "p", env=prefect_server.client_env())
    assert result.code == 2
    lines = result.stderr.splitlines()
    assert [line.split(": ")[0:2] for line in lines] == [
        [f"{spec}:6", "steps[0].env.NODE_ENV"], [f"{spec}:8", "steps[1].git.password"],
        [f"{spec}:12", "steps[2].wait[0].headers.Authorization"]]
    assert "canary" not in result.output


def test_a_missing_pool_names_the_command_to_create_it(prefect_server: PrefectServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.format(name="no-pool"))
    result = run_cli("deploy", str(spec), "--pool", "nowhere", env=prefect_server.client_env())
    assert result.code == 2
    assert len(result.stderr.splitlines()) == 1
    assert "work pool 'nowhere' does not exist: create it with `prefect work-pool create nowhere" in result.stderr
    assert deployment(prefect_server, "no-pool") is None


def test_kubernetes_flags_on_a_process_pool_and_bad_flags(prefect_server: PrefectServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.format(name="flags"))
    env = prefect_server.client_env()
    result = run_cli("deploy", str(spec), "--pool", "flags-pool", "--create-pool", "process", "--image", "x",
                     env=env)
    assert result.code == 2 and "--image: for a kubernetes work pool" in result.stderr
    result = run_cli("deploy", str(spec), "--pool", "flags-pool", "--cron", "every day", env=env)
    assert result.code == 2 and "--cron 'every day'" in result.stderr and len(result.stderr.splitlines()) == 1
    result = run_cli("deploy", str(spec), "--pool", "flags-pool", "--env", "no-equals", env=env)
    assert result.code == 2 and "--env 'no-equals': expected KEY=VALUE" in result.stderr


def test_a_kubernetes_pool_gets_the_rendered_template(prefect_server: PrefectServer, tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.format(name="kube-app"))
    result = run_cli("deploy", str(spec), "--pool", "kube-pool", "--create-pool", "kubernetes", "--image",
                     "registry.example.com/prefect-init:0.1.0", "--namespace", "apps", "--env", "APP_VERSION=1.4.2",
                     env=prefect_server.client_env())
    assert result.code == 0, result.output
    pool = prefect_server.get("/work_pools/kube-pool")
    assert pool["type"] == "kubernetes"
    manifest = pool["base_job_template"]["job_configuration"]["job_manifest"]
    assert manifest["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    found = deployment(prefect_server, "kube-app")
    assert found is not None
    assert found["job_variables"] == {"image": "registry.example.com/prefect-init:0.1.0", "namespace": "apps",
                                      "env": {"APP_VERSION": "1.4.2"}}


def test_an_unreachable_api_is_exit_1_in_one_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.format(name="offline"))
    url = f"http://127.0.0.1:{free_port()}/api"
    result = run_cli("deploy", str(spec), "--pool", "p", env=clean_env(PREFECT_API_URL=url))
    assert result.code == 1
    assert result.stderr.strip() == f"prefect-init: the Prefect API at {url} does not answer"
