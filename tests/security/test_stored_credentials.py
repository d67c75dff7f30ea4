"""Credentials are never stored where they should not be: a deployment's parameters or job variables (readable by
anyone who can read the deployment), a rendered ConfigMap, a pod's service-account token nobody needs.

The refusals happen before the Prefect API is asked anything, so most tests need no server: the positive control
of each is the same command with the credential removed, which gets past the check to "no Prefect API"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.helpers import clean_env, run_cli, write_spec

DEFAULT_PW = "dflt-canary-5a1"
DEFAULT_TOKEN = "tok-canary-5a2"
LITERAL_PW = "lit-canary-5a3"
ENV_PW = "envflag-canary-5a4"

IN_DEFAULTS = f"""
version: 1
name: defaults
steps:
  - name: db
    wait:
      - postgres: "${{DATABASE_URL:-postgres://app:{DEFAULT_PW}@db:5432/app}}"
  - name: call
    command: [echo, hi]
    env:
      API_TOKEN: "${{API_TOKEN:-{DEFAULT_TOKEN}}}"
"""
"""Line 6: a password in a URL's default; line 10: a token as an env value's default."""

WITHOUT_DEFAULTS = """
version: 1
name: defaults
steps:
  - name: db
    wait:
      - postgres: "${DATABASE_URL:-postgres://app@db:5432/app}"
  - name: call
    command: [echo, hi]
    env:
      API_TOKEN: "${API_TOKEN}"
"""

LITERAL = f"""
version: 1
name: literal
steps:
  - name: db
    wait:
      - postgres: "postgres://app:{LITERAL_PW}@db:5432/app"
  - name: call
    command: [echo, hi]
    env: {{NODE_ENV: production, GH_TOKEN: {LITERAL_PW}-tok}}
"""
"""Line 6: a literal URL password; line 9: an inline token (NODE_ENV, no credential by its name, is no warning)."""

NO_API = "no Prefect API configured"


def _canaries_absent(*texts: str) -> None:
    for text in texts:
        for canary in (DEFAULT_PW, DEFAULT_TOKEN, LITERAL_PW, ENV_PW):
            assert canary not in text, canary


def test_deploy_refuses_a_credential_in_a_variables_default(tmp_path: Path) -> None:
    control = run_cli("deploy", str(write_spec(tmp_path, WITHOUT_DEFAULTS, "ok.yaml")), "--pool", "p")
    assert control.code == 1 and NO_API in control.stderr, control.output  # past the check: only the API lacks
    spec = write_spec(tmp_path, IN_DEFAULTS)
    result = run_cli("deploy", str(spec), "--pool", "p")
    assert result.code == 2, result.output
    assert NO_API not in result.stderr, result.stderr  # refused before the API is looked for
    assert f"{spec}:6: steps[0].wait[0].postgres: " in result.stderr, result.stderr
    assert f"{spec}:10: steps[1].env.API_TOKEN: " in result.stderr, result.stderr
    assert "default" in result.stderr
    _canaries_absent(result.output)


def test_check_and_render_warn_of_a_literal_and_a_default_alike(tmp_path: Path) -> None:
    for text, lines in ((IN_DEFAULTS, (6, 10)), (LITERAL, (6, 9))):
        spec = write_spec(tmp_path, text)
        checked = run_cli("check", str(spec), "--unset-ok")
        assert checked.code == 0, checked.output
        rendered = run_cli("render", "job", str(spec), "--image", "i:1")
        assert rendered.code == 0, rendered.output
        for result in (checked, rendered):
            for line in lines:
                assert f"warning: {spec}:{line}: " in result.stderr, result.stderr
            assert "NODE_ENV" not in result.stderr and result.stderr.count("warning: ") == len(lines), result.stderr
            _canaries_absent(result.stderr)
    control = write_spec(tmp_path, WITHOUT_DEFAULTS, "ok.yaml")
    for args in (("check", str(control), "--unset-ok"), ("render", "job", str(control), "--image", "i:1")):
        result = run_cli(*args)
        assert result.code == 0 and ("valid" in result.stdout or "kind: ConfigMap" in result.stdout), result.output
        assert "warning" not in result.stderr, result.stderr


def test_deploy_refuses_a_credential_as_a_job_variable(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, WITHOUT_DEFAULTS)
    control = run_cli("deploy", str(spec), "--pool", "p", "--env", "LOG_LEVEL=debug")
    assert control.code == 1 and NO_API in control.stderr, control.output
    for flag in (f"DB_PASSWORD={ENV_PW}", f"DATABASE_URL=postgres://app:{ENV_PW}@db/app",
                 f"API_TOKEN={ENV_PW}"):  # a name that says it, a value with a password, a variable the spec
        result = run_cli("deploy", str(spec), "--pool", "p", "--env", flag)  # reads as a credential
        name = flag.partition("=")[0]
        assert result.code == 2 and NO_API not in result.stderr, result.output
        assert f"--env {name}: a credential" in result.stderr, result.stderr
        _canaries_absent(result.output)


def test_trigger_refuses_a_credential_as_a_job_variable(tmp_path: Path) -> None:
    control = run_cli("trigger", "prefect-init/x", "--env", "LOG_LEVEL=debug")
    assert control.code == 2 and NO_API in control.stderr, control.output
    for flag in (f"DB_PASSWORD={ENV_PW}", f"DATABASE_URL=postgres://app:{ENV_PW}@db/app"):
        result = run_cli("trigger", "prefect-init/x", "--env", flag)
        assert result.code == 2 and NO_API not in result.stderr, result.output
        assert f"--env {flag.partition('=')[0]}: a credential" in result.stderr, result.stderr
        _canaries_absent(result.output)
    spec = write_spec(tmp_path, WITHOUT_DEFAULTS)  # a spec file: the variables it reads as credentials too
    result = run_cli("trigger", str(spec), "--env", f"API_TOKEN={ENV_PW}")
    assert result.code == 2 and "--env API_TOKEN: a credential" in result.stderr, result.output


def _pod(text: str, tmp_path: Path, kind: str = "job") -> dict[str, Any]:
    result = run_cli("render", kind, str(write_spec(tmp_path, text)), "--image", "i:1")
    assert result.code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    workload = next(d for d in docs if d["kind"] in ("Job", "CronJob", "Deployment"))
    template = workload["spec"]["jobTemplate"]["spec"] if kind == "cronjob" else workload["spec"]
    return dict(template["template"]["spec"])


VAULT_K8S = """
version: 1
name: vaulted
steps:
  - name: secrets
    vault:
      address: http://vault:8200
      auth: {kubernetes: {role: app}}
      secrets: [{path: secret/data/app, dest: /secrets/app.json}]
"""


def test_rendered_pods_mount_no_service_account_token_unless_a_step_needs_it(tmp_path: Path) -> None:
    plain = WITHOUT_DEFAULTS
    for kind in ("job", "init-container"):
        assert _pod(plain, tmp_path, kind)["automountServiceAccountToken"] is False
    assert _pod(VAULT_K8S, tmp_path)["automountServiceAccountToken"] is True
    own_jwt = VAULT_K8S.replace("{role: app}", "{role: app, jwt_file: /var/run/secrets/tokens/vault}")
    assert _pod(own_jwt, tmp_path)["automountServiceAccountToken"] is False  # a projected token of its own
    kubectl = plain.replace("command: [echo, hi]", "command: [kubectl, get, pods]")
    assert _pod(kubectl, tmp_path)["automountServiceAccountToken"] is True


def test_no_api_key_or_literal_reaches_an_error(tmp_path: Path) -> None:
    """Offline: the API key is registered at start, so even the line that says the API is away masks it."""
    result = run_cli("trigger", "prefect-init/x", env=clean_env(
        PREFECT_API_URL="http://127.0.0.1:9/api?api_key=q-canary-5a5", PREFECT_API_KEY="pnu-canary-5a6\n"))
    assert result.code == 2 and "does not answer" in result.stderr and "api_key=****" in result.stderr, \
        result.output
    assert "q-canary-5a5" not in result.output and "pnu-canary-5a6" not in result.output


API_KEY = "pnu-newline-canary-5a7"

READS_TOKEN = """
version: 1
name: {name}
steps:
  - name: call
    command: [echo, hi]
    env:
      API_TOKEN: "${{API_TOKEN}}"
"""


def _deployment(server: Any, name: str) -> dict[str, Any] | None:
    import httpx

    response = httpx.get(f"{server.api_url}/deployments/name/prefect-init/{name}", timeout=30)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return dict(response.json())


def test_deploy_and_trigger_against_a_server_store_no_credential(prefect_server: Any, tmp_path: Path) -> None:
    """A real server, a key read from a file (its newline kept): deploy and trigger work and never print it; a
    credential as --env is stored nowhere, the refused deployment and flow run do not exist."""
    env = {**prefect_server.client_env(), "PREFECT_API_KEY": API_KEY + "\n"}
    spec = write_spec(tmp_path, READS_TOKEN.format(name="stored-creds"))
    refused = run_cli("deploy", str(spec), "--pool", "creds-pool", "--create-pool", "process",
                      "--env", f"DB_PASSWORD={ENV_PW}", env=env)
    assert refused.code == 2 and "--env DB_PASSWORD: a credential" in refused.stderr, refused.output
    assert _deployment(prefect_server, "stored-creds") is None
    made = run_cli("deploy", str(spec), "--pool", "creds-pool", "--create-pool", "process",
                   "--env", "LOG_LEVEL=debug", env=env)
    assert made.code == 0, made.output  # the key's newline is no "Illegal header value"
    stored = _deployment(prefect_server, "stored-creds")
    assert stored is not None and stored["job_variables"] == {"env": {"LOG_LEVEL": "debug"}}, stored
    # the deployment's spec reads API_TOKEN as a credential: trigger refuses it once it has read the deployment
    runs_before = prefect_server.post("/flow_runs/count", {})
    result = run_cli("trigger", "prefect-init/stored-creds", "--env", f"API_TOKEN={ENV_PW}", "--no-wait", env=env)
    assert result.code == 2 and "--env API_TOKEN: a credential" in result.stderr, result.output
    assert prefect_server.post("/flow_runs/count", {}) == runs_before
    missing = run_cli("trigger", "prefect-init/no-such-deployment", env=env)
    assert missing.code == 2 and "no deployment 'prefect-init/no-such-deployment'" in missing.stderr, missing.output
    for text in (refused.output, made.output, result.output, missing.output):
        assert API_KEY not in text and ENV_PW not in text
