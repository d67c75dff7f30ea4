"""Hand-off: step outputs read by later steps, and the template step, end to end (local and Prefect mode)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from tests.conftest import PrefectServer
from tests.helpers import git as _git
from tests.helpers import run_cli, write_spec

CANARY = "db-pw-canary-8675309"
API_KEY = "api-key-canary-4242424"


def _chain(tmp_path: Path, origin: Path, name: str) -> Path:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "nginx.conf.j2").write_text(
        "server {\n"
        "    server_name {{ server_name }};\n"
        "    add_header X-Revision {{ revision }};\n"
        "    # upstream auth {{ db_password }} {{ app.api_key }}\n"
        "}\n")
    (tmp_path / "db_password").write_text(CANARY + "\n")
    (tmp_path / "app.json").write_text(json.dumps({"api_key": API_KEY}))
    return write_spec(tmp_path, f"""
        version: 1
        name: {name}
        status_file: status.json
        steps:
          - name: clone
            git: {{repo: "file://{origin}", ref: main, dest: site}}
          - name: stamp
            command: [sh, -c, 'echo "build=${{steps.clone.revision}}-1" >> "$PREFECT_INIT_OUTPUT"; echo "$DB"']
            env: {{DB: {{file: {tmp_path / 'db_password'}}}}}
          - name: nginx-conf
            after: [clone, stamp]
            template:
              source: templates/nginx.conf.j2
              dest: out/nginx.conf
              vars: {{server_name: shop.example.com, revision: "${{steps.stamp.build}}"}}
              secrets: {{db_password: {{file: db_password}}}}
              files: {{app: app.json}}
        """)


def test_clone_stamp_template_chain(tmp_path: Path, origin: Path) -> None:
    spec = _chain(tmp_path, origin, "chain")
    result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    revision = _git("rev-parse", "HEAD", cwd=origin)
    assert (tmp_path / "out" / "nginx.conf").read_text() == (
        "server {\n"
        "    server_name shop.example.com;\n"
        f"    add_header X-Revision {revision}-1;\n"
        f"    # upstream auth {CANARY} {API_KEY}\n"
        "}\n")  # exactly: the final newline kept
    assert oct((tmp_path / "out" / "nginx.conf").stat().st_mode & 0o777) == "0o400"  # a secret is in it
    status_text = (tmp_path / "status.json").read_text()
    steps = {s["name"]: s for s in json.loads(status_text)["steps"]}
    assert steps["clone"]["outputs"] == {"revision": revision, "ref": "main"}
    assert steps["stamp"]["outputs"] == {"build": f"{revision}-1"}
    assert "sha256" in steps["nginx-conf"]["outputs"]
    assert "[stamp] ****" in result.stderr  # positive control: the secret was printed, masked
    for canary in (CANARY, API_KEY):
        assert canary not in result.output + status_text
    mtime = (tmp_path / "out" / "nginx.conf").stat().st_mtime_ns
    time.sleep(0.05)
    assert run_cli("run", str(spec)).code == 0
    assert (tmp_path / "out" / "nginx.conf").stat().st_mtime_ns == mtime  # identical output: untouched


def test_the_chain_in_prefect_mode_keeps_secrets_out(prefect_server: PrefectServer, tmp_path: Path,
                                                     origin: Path) -> None:
    name = f"chain-{uuid.uuid4().hex[:6]}"
    spec = _chain(tmp_path, origin, name)
    result = run_cli("run", str(spec), "--require-api", env=prefect_server.client_env())
    assert result.code == 0, result.output
    runs = prefect_server.post("/flow_runs/filter", {"flow_runs": {"name": {"any_": [name]}}})
    deadline = time.monotonic() + 20
    while True:
        logs = str(prefect_server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [runs[0]["id"]]}},
                                                        "limit": 200}))
        if "Finished in state" in logs or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    key = {"artifacts": {"key": {"any_": [f"prefect-init-{name}"]}}}
    artifacts = str(prefect_server.post("/artifacts/filter", key))
    assert "****" in logs and "| stamp | build |" in artifacts  # positive controls: the lines arrived
    for canary in (CANARY, API_KEY):
        assert canary not in logs + artifacts + str(runs)
    prefect_server.assert_database_lacks([CANARY, API_KEY], recorded=["| stamp | build |", name])


def test_command_outputs_single_and_multi_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: outs
        status_file: status.json
        steps:
          - name: produce
            command:
              - sh
              - -c
              - >-
                echo "version=1.4.2" >> "$PREFECT_INIT_OUTPUT";
                printf "notes<<EOF\\nfirst line\\nsecond = line\\nEOF\\n" >> "$PREFECT_INIT_OUTPUT"
          - name: consume
            command: [sh, -c, 'printf "%s|%s" "${steps.produce.version}" "${steps.produce.notes}" > got.txt']
            cwd: .
        """)
    result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert (tmp_path / "got.txt").read_text() == "1.4.2|first line\nsecond = line"
    produce = json.loads((tmp_path / "status.json").read_text())["steps"][0]
    assert produce["outputs"] == {"version": "1.4.2", "notes": "first line\nsecond = line"}


def test_reading_an_output_that_was_not_produced_fails_naming_both(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: missing
        status_file: status.json
        steps:
          - name: produce
            command: [sh, -c, 'echo "a=1" >> "$PREFECT_INIT_OUTPUT"']
          - name: consume
            command: [echo, "${steps.produce.b}"]
        """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    error = json.loads((tmp_path / "status.json").read_text())["steps"][1]["error"]
    assert error == ("step 'consume' reads ${steps.produce.b}, but step 'produce' produced no output 'b' "
                     "(its outputs: a)")


def test_a_secret_is_refused_as_an_output(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok-canary-31415")
    spec = write_spec(tmp_path, f"""
        version: 1
        name: leak
        status_file: status.json
        steps:
          - name: leak
            retries: 3
            command: [sh, -c, 'echo "token=$TOKEN" >> "$PREFECT_INIT_OUTPUT"']
            env: {{TOKEN: {{file: {tmp_path / 'token'}}}}}
        """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    step = json.loads((tmp_path / "status.json").read_text())["steps"][0]
    assert step["attempts"] == 1 and "output 'token': its value is (or holds) a secret" in step["error"]
    assert "tok-canary-31415" not in result.output + (tmp_path / "status.json").read_text()


def test_references_are_checked_by_check(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: refs
        steps:
          - name: a
            command: [echo, a]
          - name: b
            after: []
            command: [echo, "${steps.a.x}"]
          - name: c
            command: [echo, "${steps.nope.x}"]
        """)
    result = run_cli("check", str(spec))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"{spec}:8: steps[1].command[1]: ${{steps.a.x}}: step 'a' is not one this step comes after (add it to "
        "after:, directly or through a step in between)",
        f"{spec}:10: steps[2].command[1]: ${{steps.nope.x}}: unknown step 'nope'"]


def test_a_template_with_an_undefined_name(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "app.conf").write_text("old\n")
    spec = write_spec(tmp_path, """
        version: 1
        name: tpl
        status_file: status.json
        steps:
          - name: conf
            template:
              inline: "host={{ host }}\\nport={{ prot }}\\n"
              dest: out/app.conf
              vars: {host: db, port: "5432"}
        """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    error = json.loads((tmp_path / "status.json").read_text())["steps"][0]["error"]
    assert error == "template inline template: 'prot' is undefined (give it in vars:, secrets: or files:)"
    assert (tmp_path / "out" / "app.conf").read_text() == "old\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["app.conf"]  # no temporary file


def test_template_syntax_error_sandbox_and_several_files(tmp_path: Path) -> None:
    (tmp_path / "broken.j2").write_text("line one\nline two\n{{ x + }}\n")
    spec = write_spec(tmp_path, """
        version: 1
        name: tpl2
        status_file: status.json
        steps:
          - name: broken
            template: {source: broken.j2, dest: out/a.conf, vars: {x: "1"}}
          - name: escape
            after: []
            template: {inline: "{{ ''.__class__.__mro__ }}", dest: out/b.conf}
          - name: many
            after: []
            templates:
              - {inline: "one={{ v }}\\n", dest: out/one.conf, vars: {v: "1"}}
              - {inline: "two={{ v }}", dest: out/two.conf, vars: {v: "2"}}
        """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    steps = {s["name"]: s for s in json.loads((tmp_path / "status.json").read_text())["steps"]}
    assert steps["broken"]["error"].startswith("template broken.j2: syntax error at line 3: ")
    assert steps["escape"]["error"].startswith("template inline template: refused by the sandbox: ")
    assert steps["many"]["status"] == "succeeded"
    assert (tmp_path / "out" / "one.conf").read_text() == "one=1\n"
    assert (tmp_path / "out" / "two.conf").read_text() == "two=2"
    assert not (tmp_path / "out" / "a.conf").exists() and not (tmp_path / "out" / "b.conf").exists()
