"""check --online: one read-only probe per step against real PostgreSQL, the Vault stand-in, an HTTP config server
and git repositories; a spec that passes, one with a problem in every probe, and proof that nothing changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg

from tests.helpers import clean_env, run_cli, write_spec
from tests.httpservers import serve
from tests.vaultserver import VaultState, vault_server

VALUE = "preflight-secret-canary-777"
HEADER = "Bearer preflight-header-canary-778"
TOKEN = "hvs.preflight-token-canary-779"


def _q(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _setup(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    (migrations / "V1__users.sql").write_text("CREATE TABLE users (id int);")
    (migrations / "V2__posts.sql").write_text("CREATE TABLE posts (id int);")
    (tmp_path / "header").write_text(HEADER)
    (tmp_path / "jwt").write_text(TOKEN)  # the service account token Vault's kubernetes auth checks
    (tmp_path / "present.json").write_text(json.dumps({"a": 1}))
    (tmp_path / "tpl.j2").write_text("host={{ host }} rev={{ rev }}\n")


def _spec(tmp_path: Path, pg: Any, origin: Path, vault: Any, config_url: str, bad: bool) -> Path:
    return write_spec(tmp_path, f"""
        version: 1
        name: preflight
        steps:
          - name: wait
            wait: [{{tcp: "127.0.0.1:{pg.port}"}}]
          - name: secrets
            vault:
              address: {vault.address}
              auth: {{kubernetes: {{role: myapp, jwt_file: {tmp_path / 'jwt'}}}}}
              secrets:
                - {{path: secret/data/app, dest: out/app.json}}
                - {{path: {'secret/data/other' if not bad else 'forbidden/data/other'}, dest: out/other.json}}
          - name: config
            config:
              url: "{config_url}"
              dest: out/config.yaml
              headers: {{Authorization: {{file: {tmp_path / 'header'}}}}}
              required: [database.host]
          - name: validate
            after: [secrets]
            validate: {{file: [out/app.json, present.json]}}
          - name: migrate
            migrate: {{database: "{pg.dsn}", dir: {tmp_path / 'migrations'}}}
          - name: clone
            git: {{repo: "file://{origin}", ref: {'main' if not bad else 'no-such-branch'}, dest: out/site}}
          - name: build
            after: [clone]
            command: [{'sh' if not bad else 'no-such-program-xyz'}, -c, "true"]
            cwd: out/site
          - name: dirs
            files: {{dirs: [{{path: out/data, mode: "0750"}}]}}
          - name: render
            after: [clone]
            template: {{source: tpl.j2, dest: out/app.conf, vars: {{host: db, rev: "${{steps.clone.revision}}"}}}}
        """, "bad.yaml" if bad else "good.yaml")


def test_online_preflight_passes_then_finds_every_problem_and_changes_nothing(tmp_path: Path, pg: Any,
                                                                                origin: Path) -> None:
    _setup(tmp_path)
    state = VaultState()
    state.kubernetes_roles[("kubernetes", "myapp")] = (TOKEN, ["secret/"])
    state.put_kv2("secret/app", {"api_key": VALUE})
    state.put_kv2("secret/other", {"k": VALUE})

    def config(n: int) -> tuple[int, bytes, dict[str, str | None]]:
        return (200, b"database:\n  host: db\n", {"Content-Type": "application/yaml"})

    with vault_server(state) as vault, serve(config) as server:
        good = _spec(tmp_path, pg, origin, vault, server.url("/app.yaml"), bad=False)
        result = run_cli("check", str(good), "--online", env=clean_env())
        assert result.code == 0, result.output
        lines = {line.split()[0]: line for line in result.stdout.splitlines()}
        assert lines["wait"].split()[2] == "ok" and lines["secrets"].split()[2] == "ok"
        assert "would change: write " in lines["config"]
        assert len(state.revoked) == 1  # the token the probe logged in for was revoked
        assert "would change: no history table yet: create it and apply 2 migrations" in lines["migrate"]
        assert "produced by an earlier step" in lines["validate"]
        assert "create" in lines["dirs"]

        # a changed migration: applied, then its file edited
        (tmp_path / "migrations" / "V9__x.sql").write_text("SELECT 1;")
        run_cli("run", "--only", "migrate", str(good), env=clean_env())
        (tmp_path / "migrations" / "V1__users.sql").write_text("CREATE TABLE users (id bigint);")
        history_before = _q(pg.dsn, "SELECT script, checksum FROM prefect_init_schema_history ORDER BY 1")
        tables_before = _q(pg.dsn, "SELECT table_name FROM information_schema.tables WHERE table_schema='public' "
                                   "ORDER BY 1")
        requests_before = len(state.requests)
        bad = _spec(tmp_path, pg, origin, vault, server.url("/missing.yaml"), bad=True)
        server.script = lambda n: (404, b"no", {})
        result = run_cli("check", str(bad), "--online", env=clean_env())
        as_json = run_cli("check", str(bad), "--online", "--format", "json", env=clean_env())
        headers_seen = [h.get("Authorization", "") for _, h in server.requests]
    assert result.code == 1, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "problem: forbidden/data/other: this role/token may not read it" in lines["secrets"]
    assert "problem: config" in lines["config"] and "HTTP 404" in lines["config"]
    assert "V1 (V1__users.sql) changed after it was applied" in lines["migrate"]
    assert "no ref 'no-such-branch'" in lines["clone"]
    assert "no-such-program-xyz: not found on PATH" in lines["build"]
    report = json.loads(as_json.stdout)
    assert as_json.code == 1 and report["ok"] is False
    assert {s["name"] for s in report["steps"] if s["result"] == "problem"} == {"secrets", "config", "migrate",
                                                                                 "clone", "build"}
    # nothing changed: no destination, no table, no migration, no secret read, tokens left as they were
    assert not (tmp_path / "out").exists()
    assert _q(pg.dsn, "SELECT script, checksum FROM prefect_init_schema_history ORDER BY 1") == history_before
    assert _q(pg.dsn, "SELECT table_name FROM information_schema.tables WHERE table_schema='public' "
                      "ORDER BY 1") == tables_before
    paths = [path for _, path, _ in state.requests]
    assert not any(p.startswith(("secret/data/", "forbidden/")) for p in paths), paths  # never a read
    assert "sys/capabilities-self" in paths[requests_before:]
    assert len(state.revoked) == 3 and not state.tokens  # every token the probes made was revoked
    assert HEADER in headers_seen  # positive control: the header was sent ...
    for text in (result.output, as_json.output):
        assert "problem" in text  # what is scanned holds the findings
        assert VALUE not in text and HEADER.split()[1] not in text and TOKEN not in text  # ... and never shown


def test_a_fresh_database_gets_no_history_table(tmp_path: Path, pg: Any) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "V1__a.sql").write_text("CREATE TABLE a (id int);")
    spec = write_spec(tmp_path, f"""
        version: 1
        name: fresh
        steps:
          - name: migrate
            migrate: {{database: "{pg.dsn}", dir: {tmp_path / 'm'}}}
        """)
    result = run_cli("check", str(spec), "--online", env=clean_env())
    assert result.code == 0, result.output
    assert "create it and apply 1 migrations" in result.stdout
    assert _q(pg.dsn, "SELECT to_regclass('prefect_init_schema_history') IS NULL") == [(True,)]


def test_preflight_and_migrations_do_not_import_prefect(tmp_path: Path, pg: Any) -> None:
    """They run where prefect-init runs without an API (an initContainer, a CI job): no `import prefect`."""
    import subprocess
    import sys

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "V1__a.sql").write_text("CREATE TABLE a (id int);")
    spec = write_spec(tmp_path, f"""
        version: 1
        name: light
        steps:
          - name: migrate
            migrate: {{database: "{pg.dsn}", dir: {tmp_path / 'm'}}}
          - name: build
            command: [sh, -c, "true"]
        """)
    probe = ("import sys\nfrom prefect_init.cli import app\n"
             "try:\n    app(sys.argv[1:])\nexcept SystemExit as exc:\n    code = exc.code\n"
             "print('\\nEXIT', code, 'PREFECT', 'prefect' in sys.modules)\n")
    for args in (["check", str(spec), "--online"], ["migrations", str(spec)]):
        out = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=120,
                             env=clean_env()).stdout
        assert out.strip().splitlines()[-1] == "EXIT 0 PREFECT False", out
