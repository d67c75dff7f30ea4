"""Secrets never reach the record, in any of the forms a value takes on its way there: escaped in JSON, quoted for
a shell, encoded in a URL, a number, a token as a URL's user, a token in a query string, a key in the environment.

Each scan asserts its positive control first: the masked form (``****``) is where the value would have been."""

from __future__ import annotations

import json
import shlex
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prefect_init.runtime.redaction import MASK, Redactor, redact
from tests.helpers import clean_env, run_cli, write_spec
from tests.vaultserver import FakeVault, VaultState, vault_server

QUOTED = 'canary"quote\\slash-4e1'
APOSTROPHE = "it's-a-canary-4e2"
SPACED = "canary with space&amp=4e3"
NUMBER = 90417723
TOKEN = "ghp-canary-user-4e5"
VAULT_TOKEN = "hvs.env-token-canary-4e6"
API_KEY = "pnu-env-api-key-canary-4e7"


@pytest.mark.parametrize("value", [QUOTED, APOSTROPHE, SPACED, "ünïcode-canary-4e4"])
def test_every_escaped_form_of_a_registered_value_is_masked(value: str) -> None:
    r = Redactor()
    r.register(value)
    forms = {json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], shlex.quote(value),
             "'" + value.replace("'", "'\\''") + "'", urllib.parse.quote(value, safe=""), value.replace("'", "''"),
             urllib.parse.quote_plus(value), repr(value)[1:-1]}
    for form in forms:
        masked = r.redact(f"before {form} after")
        assert masked.startswith("before ") and masked.endswith(" after") and MASK in masked, (form, masked)
        assert form not in masked and value not in masked, (form, masked)


def test_numbers_are_registered_by_their_text_and_masked_whole() -> None:
    r = Redactor()
    r.register(NUMBER)
    r.register(12)  # below the minimum length: never masked by value
    r.register(True)
    assert r.redact(f"pin {NUMBER}, port 12, True") == f"pin {MASK}, port 12, True"
    assert r.redact(f"id 1{NUMBER}2") == f"id 1{NUMBER}2"  # a number is masked whole, not inside another
    r.register(3.25)
    assert r.redact("ratio 3.25") == f"ratio {MASK}"


def test_a_token_as_a_urls_user_is_masked_unregistered() -> None:
    assert redact(f"clone https://{TOKEN}@github.example/org/repo.git failed") == \
        f"clone https://{MASK}@github.example/org/repo.git failed"
    assert redact(f"git+https://{TOKEN}@host/x") == f"git+https://{MASK}@host/x"
    assert redact(f"https://user:{TOKEN}@host/") == f"https://user:{MASK}@host/"
    # not a token: an e-mail address in text, a ssh user, a database user without a password
    assert redact("mail ops@example.com") == "mail ops@example.com"
    assert redact("ssh://git@host/repo.git postgres://app@db/app") == "ssh://git@host/repo.git postgres://app@db/app"


@pytest.mark.parametrize("name", ["access_token", "token", "private_token", "api_key", "apikey", "key", "sig",
                                  "signature", "password", "secret", "X-Amz-Signature", "X-Amz-Security-Token",
                                  "client_secret", "ACCESS_TOKEN"])
def test_query_string_credentials_are_masked_by_name(name: str) -> None:
    url = f"https://host/path?page=2&{name}=q-canary-4e8&b=1"
    assert redact(f"GET {url} 403") == f"GET https://host/path?page=2&{name}={MASK}&b=1 403"
    assert redact(f"https://host/?{name}=q-canary-4e8") == f"https://host/?{name}={MASK}"


def test_a_sql_statements_literal_password_is_masked_unregistered() -> None:
    assert redact("CREATE ROLE app LOGIN PASSWORD 'sql-canary''5c1';") == f"CREATE ROLE app LOGIN PASSWORD '{MASK}';"
    assert redact("alter role app with encrypted password 'x y'") == f"alter role app with encrypted password '{MASK}'"
    assert redact("a PASSWORD column") == "a PASSWORD column"


def test_query_strings_without_credentials_are_kept() -> None:
    text = "https://host/search?q=monkeyish&page=2&keyword=x&tokens_used=3"
    assert redact(text) == text


def test_a_burst_of_values_is_compiled_once_at_the_next_redact() -> None:
    """A Vault secret's values arrive at once: the one pattern is compiled at the next redact, not once per value
    (which took 180 s for 1,000 values; bench/bench_redaction.py times it). Counted, not timed."""
    r = Redactor()
    for i in range(200):
        r.register(f"value-{i:04d}-secret's")
    assert r._pattern is None and r._stale  # nothing compiled yet
    assert r.redact("x value-0199-secret's y value-0000-secret''s") == f"x {MASK} y {MASK}"
    compiled = r._pattern
    assert compiled is not None and not r._stale
    r.register("value-0005-secret's")  # known already: nothing to compile again
    r.redact("z")
    assert r._pattern is compiled


@pytest.fixture
def vault() -> Iterator[FakeVault]:
    state = VaultState()
    state.tokens["hvs.root-canary-token-4e9"] = ["secret/"]
    state.put_kv2("secret/app", {"quoted": QUOTED, "apostrophe": APOSTROPHE, "spaced": SPACED, "pin": NUMBER})
    with vault_server(state) as server:
        yield server


def test_vault_values_never_reach_the_record_in_any_form(tmp_path: Path, vault: FakeVault) -> None:
    """The values written as JSON and as a shell env file, printed by a later step, and a failing step that echoes
    them: stderr, the status file and the termination log hold the masked form, never a value in any form."""
    (tmp_path / "token").write_text("hvs.root-canary-token-4e9\n")
    spec = write_spec(tmp_path, json.dumps({"version": 1, "name": "forms", "status_file": "status.json", "steps": [
        {"name": "secrets", "vault": {"address": vault.address, "auth": {"token_file": str(tmp_path / "token")},
                                      "secrets": [{"path": "secret/data/app", "dest": str(tmp_path / "s.json")},
                                                  {"path": "secret/data/app", "dest": str(tmp_path / "s.env"),
                                                   "format": "env"}]}},
        {"name": "show", "after": ["secrets"], "command": ["sh", "-c", f"cat {tmp_path}/s.json; echo; "
                                                          f"cat {tmp_path}/s.env"]},
        {"name": "fail", "after": ["show"], "command": ["sh", "-c", f"cat {tmp_path}/s.json {tmp_path}/s.env >&2; "
                                                        "exit 3"]}]}))
    term = tmp_path / "termination-log"
    term.write_text("")
    result = run_cli("run", str(spec), env=clean_env(PREFECT_INIT_TERMINATION_LOG=str(term)))
    assert result.code == 1 and "[fail] failed after" in result.stderr, result.output
    written = json.loads((tmp_path / "s.json").read_text())
    assert written["quoted"] == QUOTED and written["pin"] == NUMBER  # the values got where they belong
    status = (tmp_path / "status.json").read_text()
    # positive controls: the lines are there, masked
    assert '"quoted": "****"' in result.stderr and '"pin": ****' in result.stderr, result.stderr
    assert "apostrophe='****'" in result.stderr and "****" in status and "****" in term.read_text()
    forms = {form for value in (QUOTED, APOSTROPHE, SPACED) for form in
             (value, json.dumps(value)[1:-1], shlex.quote(value), value.replace("'", "'\\''"),
              json.dumps(json.dumps(value))[1:-1])}
    forms.add(str(NUMBER))
    for text in (result.stdout, result.stderr, status, term.read_text()):
        for form in forms:
            assert form not in text, form


def test_a_token_as_a_urls_user_never_reaches_the_record(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, f"""
        version: 1
        name: url-user
        status_file: status.json
        steps:
          - name: clone
            command: [sh, -c, 'echo "fatal: https://{TOKEN}@127.0.0.1:9/r.git?access_token={TOKEN}x" >&2; exit 9']
    """)
    term = tmp_path / "termination-log"
    term.write_text("")
    result = run_cli("run", str(spec), env=clean_env(PREFECT_INIT_TERMINATION_LOG=str(term)))
    assert result.code == 1, result.output
    status = (tmp_path / "status.json").read_text()
    for text in (result.stderr, status, term.read_text()):
        assert f"https://{MASK}@127.0.0.1:9/r.git?access_token={MASK}" in text, text  # the positive control
        assert TOKEN not in text


def test_vault_token_and_api_key_from_the_environment_are_masked(tmp_path: Path) -> None:
    """Nothing in the spec reads them, so nothing else registers them: the CLI does, at start."""
    spec = write_spec(tmp_path, """
        version: 1
        name: env-keys
        status_file: status.json
        steps:
          - name: leak
            command: [sh, -c, 'echo "token $VAULT_TOKEN key $PREFECT_API_KEY"; echo "again $VAULT_TOKEN" >&2; exit 1']
    """)
    term = tmp_path / "termination-log"
    term.write_text("")
    result = run_cli("run", str(spec), "--local", env=clean_env(
        PREFECT_INIT_TERMINATION_LOG=str(term), VAULT_TOKEN=VAULT_TOKEN, PREFECT_API_KEY=API_KEY + "\n"))
    assert result.code == 1, result.output
    status = (tmp_path / "status.json").read_text()
    assert f"token {MASK} key {MASK}" in result.stderr and f"again {MASK}" in status, result.stderr
    for text in (result.stdout, result.stderr, status, term.read_text()):
        assert VAULT_TOKEN not in text and API_KEY not in text


def test_a_file_secret_echoed_as_a_database_or_a_validator_would_is_masked(tmp_path: Path) -> None:
    """A value a step read from a file, echoed the way PostgreSQL quotes a statement (``'`` doubled), a JSON Schema
    error (Python's repr) and a JSON document do: each line is there, masked."""
    value = "it's \"odd\" \\ 4f1"
    secret = tmp_path / "pw"
    secret.write_text(value)
    echoes = tmp_path / "echoes"
    sql = value.replace("'", "''")
    echoes.write_text(f"LINE 1: INSERT INTO settings VALUES ('{sql}', 1, 2)\n"
                      f"CONTEXT: ALTER ROLE app PASSWORD 'literal''-canary-5c2'\n"
                      f"schema: {value!r} is not of type 'integer'\n"
                      f"json: {json.dumps({'password': value})}\n")
    spec = write_spec(tmp_path, json.dumps({"version": 1, "name": "echoes", "status_file": "status.json", "steps": [
        {"name": "echo", "command": ["sh", "-c", f"cat {echoes} >&2; exit 4"], "env": {"PW": {"file": str(secret)}},
         "retries": 0}]}))
    result = run_cli("run", str(spec))
    assert result.code == 1, result.output
    status = (tmp_path / "status.json").read_text()
    for marker in ("VALUES ('****', 1, 2)", "CONTEXT: ALTER ROLE app PASSWORD '****'", "schema: '****'",
                   'json: {"password": "****"}'):
        assert marker in result.stderr, (marker, result.stderr)
    forms = [value, value.replace("'", "''"), repr(value)[1:-1], json.dumps(value)[1:-1], "4f1", "-canary-5c2"]
    for text in (result.stderr, status):
        for form in forms:
            assert form not in text, form


def test_a_flow_run_by_a_worker_masks_the_environments_keys(prefect_server: Any, tmp_path: Path) -> None:
    """The flow a worker runs (flows/spec_flow.py, not the CLI) registers VAULT_TOKEN from its environment too: the
    step's line reaches the Prefect API masked. Run as a worker runs it: the flow function, in a process of its
    own, against a real server."""
    import subprocess
    import sys
    import time
    import uuid

    name = f"flow-env-{uuid.uuid4().hex[:8]}"
    text = json.dumps({"version": 1, "name": name, "steps": [
        {"name": "leak", "command": ["sh", "-c", 'echo "flow token $VAULT_TOKEN"']}]})
    code = "import sys; from prefect_init.flows.spec_flow import run_spec; run_spec(spec_text=sys.argv[1])"
    env = {**prefect_server.client_env(), "VAULT_TOKEN": VAULT_TOKEN}
    proc = subprocess.run([sys.executable, "-c", code, text], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = prefect_server.post("/flow_runs/filter", {"flow_runs": {"name": {"like_": name}}})
    assert len(runs) == 1, runs
    deadline = time.monotonic() + 20
    while True:  # logs are shipped in batches: until the step's line arrived, or the bound
        logs = prefect_server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [runs[0]["id"]]}},
                                                    "limit": 200})
        messages = "\n".join(entry["message"] for entry in logs)
        if "flow token" in messages or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert f"flow token {MASK}" in messages, messages  # the positive control
    for text_ in (messages, proc.stdout, proc.stderr):
        assert VAULT_TOKEN not in text_


def test_what_a_yaml_error_echoes_of_a_secrets_file_is_masked(tmp_path: Path) -> None:
    """A secrets file that is not valid YAML is not parsed, so none of its values is registered; PyYAML's error
    quotes a tag of it: the template step's error carries the tag masked."""
    secrets = tmp_path / "app.yaml"
    secrets.write_text("db_password: !s3cret-tag-canary-5b1 x\nother: ok\n")
    spec = write_spec(tmp_path, json.dumps({"version": 1, "name": "yaml-echo", "status_file": "status.json",
                                            "steps": [
        {"name": "render", "template": {"inline": "{{ app.db_password }}", "dest": str(tmp_path / "out.txt"),
                                        "files": {"app": str(secrets)}}}]}))
    term = tmp_path / "termination-log"
    term.write_text("")
    result = run_cli("run", str(spec), env=clean_env(PREFECT_INIT_TERMINATION_LOG=str(term)))
    assert result.code == 1, result.output
    status = (tmp_path / "status.json").read_text()
    for text in (result.stderr, status):
        assert f"constructor for the tag '{MASK}'" in text, text  # the positive control: the error, masked
        assert "s3cret-tag-canary-5b1" not in text
    assert "s3cret-tag-canary-5b1" not in term.read_text()


def test_an_api_key_with_its_newline_authenticates_the_pods_run(prefect_server: Any, tmp_path: Path) -> None:
    """A key read from a file (a Secret's value) keeps its newline: the pod side's REST calls strip it, so the run
    is mirrored (--require-api) rather than refused with "connection lost: LocalProtocolError"."""
    import uuid

    name = f"key-newline-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, f"version: 1\nname: {name}\nsteps:\n  - name: a\n    command: [echo, hi]\n")
    env = {**prefect_server.client_env(), "PREFECT_API_KEY": API_KEY + "\n"}
    result = run_cli("run", str(spec), "--require-api", env=env)
    assert result.code == 0, result.output
    assert prefect_server.flow_run_named(name)["state_type"] == "COMPLETED"
    assert API_KEY not in result.output
