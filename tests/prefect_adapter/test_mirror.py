"""Prefect mode against a real `prefect server start`: flow run, task runs, retries, artifact, no secrets."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import PrefectServer
from tests.helpers import CLI, run_cli, write_spec
from tests.prefectserver import settled_task_runs

CANARY = "canary-prefect-9d1e77-topsecret"


def _task_runs(server: PrefectServer, flow_run_id: str, count: int) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in settled_task_runs(server.api_url, [flow_run_id], count)}


def _logs(server: PrefectServer, flow_run_id: str) -> list[str]:
    # logs are shipped in batches: wait until the flow's last line arrived
    deadline = time.monotonic() + 20
    while True:
        logs = server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200})
        messages = [entry["message"] for entry in logs]
        flow_end = any("Finished in state" in e["message"] for e in logs if e["task_run_id"] is None)
        if flow_end or time.monotonic() > deadline:  # the flow run's own last line, not a failed task's
            return messages
        time.sleep(0.3)


def test_successful_run_is_a_completed_flow_run_with_a_task_run_per_step(
        prefect_server: PrefectServer, tmp_path: Path) -> None:
    name = f"ok-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        steps:
          - name: prepare
            files: {{dirs: [{{path: out, mode: "0755"}}]}}
          - name: hello
            command: [echo, hello from a task]
          - name: side
            after: []
            command: [echo, side]
    """)
    result = run_cli("run", str(spec), "--require-api", env=prefect_server.client_env())
    assert result.code == 0, result.output
    flow_run = prefect_server.flow_run_named(name)
    assert flow_run["state_type"] == "COMPLETED"
    # where the run is, said before the first step, as Prefect's engine says "View at"
    ui = prefect_server.api_url.removesuffix("/api")
    link = f"prefect-init: {name}: flow run {name}: {ui}/runs/flow-run/{flow_run['id']}"
    assert result.stderr.splitlines()[0] == link
    tasks = _task_runs(prefect_server, flow_run["id"], 3)
    assert set(tasks) == {"prepare", "hello", "side"}
    assert all(t["state_type"] == "COMPLETED" for t in tasks.values())
    assert "hello from a task" in _logs(prefect_server, flow_run["id"])
    artifacts = prefect_server.post("/artifacts/filter", {"artifacts": {"key": {"any_": [f"prefect-init-{name}"]}}})
    assert artifacts and "| hello | command | succeeded | 1 |" in artifacts[0]["data"]


def test_failed_step_fails_the_flow_run_with_retries_recorded(prefect_server: PrefectServer, tmp_path: Path) -> None:
    name = f"fail-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        status_file: status.json
        defaults: {{retries: 2, retry_delay: 50ms}}
        steps:
          - name: flaky
            command: [sh, -c, "echo nope; exit 1"]
          - name: never
            command: [echo, never]
    """)
    result = run_cli("run", str(spec), env=prefect_server.client_env())
    assert result.code == 1, result.output
    flow_run = prefect_server.flow_run_named(name)
    assert flow_run["state_type"] == "FAILED"
    tasks = _task_runs(prefect_server, flow_run["id"], 2)
    assert set(tasks) == {"flaky", "never"}
    assert tasks["flaky"]["state_type"] == "FAILED"
    # a skipped step is a task run in the state Prefect's engine gives a task whose upstream failed
    never = tasks["never"]
    assert (never["state_type"], never["state_name"]) == ("PENDING", "NotReady")
    assert never["state"]["message"] == "Upstream task run 'flaky' did not reach a 'COMPLETED' state."
    assert never["task_inputs"]["wait_for"] == [{"input_type": "task_run", "id": tasks["flaky"]["id"]}]
    # and the failure is an ERROR on the failed task run, as Prefect's engine logs it
    errors = prefect_server.post("/logs/filter", {"logs": {"task_run_id": {"any_": [tasks["flaky"]["id"]]},
                                                           "level": {"ge_": 40}}})
    assert len(errors) == 1, errors
    assert errors[0]["message"].startswith("Finished in state Failed(") and "exited with 1" in errors[0]["message"]
    assert tasks["flaky"]["run_count"] == 3
    states = prefect_server.get(f"/task_run_states/?task_run_id={tasks['flaky']['id']}")
    assert [s["name"] for s in states].count("AwaitingRetry") == 2
    status = (tmp_path / "status.json").read_text()
    assert '"status": "skipped"' in status and '"attempts": 3' in status
    artifacts = prefect_server.post("/artifacts/filter", {"artifacts": {"key": {"any_": [f"prefect-init-{name}"]}}})
    assert "| flaky | command | failed | 3 |" in artifacts[0]["data"]
    assert "| never | command | skipped | 0 |" in artifacts[0]["data"]


def test_canary_never_reaches_the_prefect_api(prefect_server: PrefectServer, tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(CANARY)
    name = f"canary-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        status_file: status.json
        steps:
          - name: leak-attempt
            command: [sh, -c, 'echo "token=$TOKEN"; echo "$TOKEN" >&2']
            env: {{TOKEN: {{file: {secret}}}}}
          - name: fail-with-it
            retries: 1
            retry_delay: 10ms
            command: [sh, -c, 'echo "rejected $TOKEN"; exit 1']
            env: {{TOKEN: {{file: {secret}}}}}
    """)
    result = run_cli("run", str(spec), env=prefect_server.client_env())
    assert result.code == 1
    flow_run = prefect_server.flow_run_named(name)
    logs = _logs(prefect_server, flow_run["id"])
    assert "token=****" in logs  # the line arrived, masked
    artifacts = prefect_server.post("/artifacts/filter", {"artifacts": {"key": {"any_": [f"prefect-init-{name}"]}}})
    tasks = _task_runs(prefect_server, flow_run["id"], 2)
    states = [prefect_server.get(f"/task_run_states/?task_run_id={t['id']}") for t in tasks.values()]
    for text in (result.stdout, result.stderr, (tmp_path / "status.json").read_text(), str(logs),
                 str(artifacts), str(tasks), str(states), str(flow_run)):
        assert CANARY not in text
    prefect_server.assert_database_lacks([CANARY], recorded=["token=****", name])


def test_vault_canaries_never_reach_prefect(prefect_server: PrefectServer, tmp_path: Path) -> None:
    from tests.vaultserver import VaultState, vault_server

    token, jwt, value = "hvs.pf-token-canary-77", "jwt-pf-canary-78", "pf-secret-value-canary-79"
    state = VaultState()
    state.kubernetes_roles[("kubernetes", "myapp")] = (jwt, ["secret/data/myapp"])
    state.tokens[token] = ["secret/"]
    state.put_kv2("secret/myapp", {"api_key": value, "nested": {"deep": value + "-deep"}})
    (tmp_path / "jwt").write_text(jwt)
    (tmp_path / "token").write_text(token)
    runs = [  # a run that fetches the canaries, and one that fetches them and then fails
        (f"vault-ok-{uuid.uuid4().hex[:6]}", {"kubernetes": {"role": "myapp", "jwt_file": str(tmp_path / "jwt")}},
         ["api_key"], 0),
        (f"vault-fail-{uuid.uuid4().hex[:6]}", {"token_file": str(tmp_path / "token")}, ["api_key", "absent_key"], 1),
    ]
    outputs = []
    with vault_server(state) as vault:
        for name, auth, required, expected in runs:
            spec = tmp_path / f"{name}.yaml"
            spec.write_text(json.dumps({"version": 1, "name": name, "status_file": f"{name}.json", "steps": [
                {"name": "secrets", "vault": {"address": vault.address, "auth": auth, "secrets": [
                    {"path": "secret/data/myapp", "dest": f"{name}-out.json", "required": required}]}},
                # prints the secret file: the line must reach the API, masked (the scan's positive control)
                {"name": "show", "command": ["cat", f"{name}-out.json"], "cwd": str(tmp_path)}]}))
            result = run_cli("run", str(spec), "--require-api", env=prefect_server.client_env())
            assert result.code == expected, result.output
            flow_run = prefect_server.flow_run_named(name)
            key = {"artifacts": {"key": {"any_": [f"prefect-init-{name}"]}}}
            logs = str(_logs(prefect_server, flow_run["id"]))
            artifacts = str(prefect_server.post("/artifacts/filter", key))
            # nothing scanned below may be empty, and what should carry the masked value does
            assert "| secrets | vault |" in artifacts and "Finished in state" in logs
            if expected == 0:
                assert '"api_key": "****"' in logs and '"api_key": "****"' in result.stderr
            else:
                assert "missing required keys: absent_key" in logs
            outputs += [result.output, (tmp_path / f"{name}.json").read_text(), logs, artifacts, str(flow_run)]
    assert json.loads((tmp_path / f"{runs[0][0]}-out.json").read_text())["api_key"] == value  # it got there
    assert "missing required keys: absent_key" in "".join(outputs)
    for canary in (token, jwt, value):
        for text in outputs:
            assert canary not in text
    prefect_server.assert_database_lacks([token, jwt, value], recorded=[
        '"api_key": "****"', "missing required keys: absent_key", *(name for name, *_ in runs)])


def test_spec_from_standard_input(prefect_server: PrefectServer, tmp_path: Path) -> None:
    name = f"stdin-{uuid.uuid4().hex[:8]}"
    text = (f"version: 1\nname: {name}\nsteps:\n  - name: hello\n    command: [echo, from-stdin]\n"
            f"  - name: made\n    files: {{dirs: [{{path: {name}-dir}}]}}\n")
    proc = subprocess.run([*CLI, "run", "-", "--require-api"], input=text, capture_output=True, text=True,
                          env=prefect_server.client_env(), timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert prefect_server.flow_run_named(name)["state_type"] == "COMPLETED"
    assert "from-stdin" in proc.stderr
    # relative paths mean what they mean in local mode: the current directory, not the temporary file's
    assert (tmp_path / f"{name}-dir").is_dir()


def test_sigterm_in_prefect_mode_fails_the_run_and_writes_the_status(
        prefect_server: PrefectServer, tmp_path: Path) -> None:
    import signal

    name = f"term-{uuid.uuid4().hex[:8]}"
    flag = tmp_path / "started"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        status_file: status.json
        steps:
          - name: long
            kill_grace: 1s
            timeout: 10m
            command: [sh, -c, "touch {flag}; exec sleep 600"]
          - name: later
            command: [echo, later]
    """)
    proc = subprocess.Popen([*CLI, "run", str(spec), "--require-api"], env=prefect_server.client_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not flag.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert flag.exists(), "the long step never started"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 1, stderr
    assert took < 1 + 2 + 2, took  # kill_grace 1 s, the observer's 1.5 s after SIGTERM, the exit itself
    status = json.loads((tmp_path / "status.json").read_text())
    assert [s["status"] for s in status["steps"]] == ["failed", "skipped"]
    assert "SIGTERM" in status["steps"][0]["error"]
    assert prefect_server.flow_run_named(name)["state_type"] == "FAILED"


def test_the_plan_is_drawn_from_wait_for_inputs(prefect_server: PrefectServer, tmp_path: Path) -> None:
    """A diamond (a; b and c after a; d after both): each task run records the task runs it waited for."""
    name = f"diamond-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        steps:
          - name: a
            command: [echo, a]
          - name: b
            after: [a]
            command: [echo, b]
          - name: c
            after: [a]
            command: [echo, c]
          - name: d
            after: [b, c]
            command: [echo, d]
    """)
    result = run_cli("run", str(spec), "--require-api", env=prefect_server.client_env())
    assert result.code == 0, result.output
    tasks = _task_runs(prefect_server, prefect_server.flow_run_named(name)["id"], 4)

    def waited_for(step: str) -> set[str]:
        inputs = tasks[step]["task_inputs"].get("wait_for", [])
        assert all(i["input_type"] == "task_run" for i in inputs)
        return {i["id"] for i in inputs}

    assert waited_for("a") == set()
    assert waited_for("b") == waited_for("c") == {tasks["a"]["id"]}
    assert waited_for("d") == {tasks["b"]["id"], tasks["c"]["id"]}
