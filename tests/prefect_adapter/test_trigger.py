"""prefect-init trigger, and the prefect_run wait target, with a real server, a real `process` work pool and a
real `prefect worker start` (fixture `process_pool`)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from tests.conftest import ProcessPool, free_port
from tests.helpers import clean_env, run_cli, write_spec
from tests.prefectserver import settled_task_runs

OK = """
version: 1
name: {name}
steps:
  - name: prepare
    files:
      dirs: [{{path: out, mode: "0755"}}]
  - name: greet
    command: [sh, -c, 'echo "hello $WHO" > greeting']
    cwd: out
"""

FAILING = """
version: 1
name: {name}
steps:
  - name: fine
    command: [sh, -c, "exit 0"]
  - name: migrate-db
    command: [sh, -c, 'echo "relation users already exists" >&2; exit 3']
    retries: 1
    retry_delay: 100ms
  - name: later
    command: [echo, never]
"""


def deploy(pool: ProcessPool, directory: Path, text: str, name: str) -> Path:
    spec = write_spec(directory, text.format(name=name), f"{name}.yaml")
    result = run_cli("deploy", str(spec), "--pool", pool.name, "--base-dir", str(directory), env=pool.env())
    assert result.code == 0, result.output
    return spec


def flow_runs(pool: ProcessPool, name: str, tag: str | None = None) -> list[dict[str, Any]]:
    deployment = pool.server.get(f"/deployments/name/prefect-init/{name}")
    runs: dict[str, Any] = {"deployment_id": {"any_": [deployment["id"]]}}
    if tag:
        runs["tags"] = {"all_": [tag]}
    return pool.server.post("/flow_runs/filter", {"flow_runs": runs, "sort": "EXPECTED_START_TIME_DESC"})


def test_deploy_then_trigger_completes(process_pool: ProcessPool, tmp_path: Path) -> None:
    spec = deploy(process_pool, tmp_path, OK, "trigger-ok")
    result = run_cli("trigger", "prefect-init/trigger-ok", "--env", "WHO=ci", "--tag", "release-1",
                     env=process_pool.env(), timeout=180)
    assert result.code == 0, result.output + process_pool.log.read_text()[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("prefect-init/trigger-ok: flow run ") and "/runs/flow-run/" in lines[0]
    assert lines[-1].endswith("COMPLETED")
    assert (tmp_path / "out" / "greeting").read_text() == "hello ci\n"  # --env reached this run's process
    run, = flow_runs(process_pool, "trigger-ok", "release-1")
    assert run["state_type"] == "COMPLETED"
    assert lines[0].split()[3] == run["name"] and run["name"].startswith("trigger-ok/")  # printed, and kept
    assert run["parameters"]["spec_text"] == spec.read_text()
    tasks = settled_task_runs(process_pool.server.api_url, [run["id"]], 2)
    assert sorted(t["name"] for t in tasks) == ["greet", "prepare"]
    for task in tasks:  # tagged as the flow run, and as any other run of the spec
        assert {"prefect-init", "spec:trigger-ok", "release-1"} <= set(task["tags"]), task["tags"]
    artifacts = process_pool.server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
    assert [a["key"] for a in artifacts] == ["prefect-init-trigger-ok"]
    assert "| greet | command | succeeded |" in artifacts[0]["data"]


def test_every_run_of_a_deployment_has_a_name_of_its_own(process_pool: ProcessPool, tmp_path: Path) -> None:
    """Two triggered runs and one a schedule would make (created with no name, as Prefect's scheduler does): three
    names, each ``<spec name>/<slug>``; a triggered run keeps the name ``trigger`` printed; ``runs`` tells them
    apart."""
    spec = deploy(process_pool, tmp_path, OK, "run-names")
    printed = []
    for who in ("first", "second"):
        result = run_cli("trigger", "run-names", "--env", f"WHO={who}", env=process_pool.env(), timeout=180)
        assert result.code == 0, result.output + process_pool.log.read_text()[-3000:]
        printed.append(result.stdout.splitlines()[0].split()[3])
    deployment = process_pool.server.get("/deployments/name/prefect-init/run-names")
    scheduled: Any = process_pool.server.post(f"/deployments/{deployment['id']}/create_flow_run", {})
    deadline = time.monotonic() + 120
    while process_pool.server.get(f"/flow_runs/{scheduled['id']}")["state_type"] not in ("COMPLETED", "FAILED"):
        assert time.monotonic() < deadline, process_pool.log.read_text()[-3000:]
        time.sleep(0.2)
    names = {run["id"]: run["name"] for run in flow_runs(process_pool, "run-names")}
    assert len(names) == 3 and len(set(names.values())) == 3, names
    assert all(re.fullmatch(r"run-names/[a-z]+-[a-z]+", name) for name in names.values()), names
    assert sorted(printed) == sorted(n for i, n in names.items() if i != scheduled["id"])
    assert names[scheduled["id"]] == f"run-names/{scheduled['name']}"  # the scheduler's slug, after the spec
    listed = run_cli("runs", str(spec), env=process_pool.env())
    assert listed.code == 0, listed.output
    assert all(name in listed.stdout for name in names.values()), listed.stdout


def test_a_deployment_made_before_the_layers_moved_still_runs(process_pool: ProcessPool, tmp_path: Path) -> None:
    """Deployments in the field name the flow by the module path releases before the move wrote; it is written
    here as a literal (not read from the code) and the deployment is made over the REST API, as an old release
    made it, so neither a renamed module nor a changed ``deploy`` can make this pass."""
    spec = write_spec(tmp_path, OK.format(name="old-entrypoint"), "old.yaml")
    server = process_pool.server
    flow: Any = server.post("/flows/", {"name": "prefect-init"})
    server.post("/deployments/", {
        "name": "old-entrypoint", "flow_id": flow["id"], "entrypoint": "prefect_init.flows.spec_flow:run_spec",
        "work_pool_name": process_pool.name, "pull_steps": [],
        "parameters": {"spec_text": spec.read_text(), "base_dir": str(tmp_path)}})
    result = run_cli("trigger", "prefect-init/old-entrypoint", "--env", "WHO=old", env=process_pool.env(),
                     timeout=180)
    assert result.code == 0, result.output + process_pool.log.read_text()[-3000:]
    run, = flow_runs(process_pool, "old-entrypoint")
    assert run["state_type"] == "COMPLETED"
    assert (tmp_path / "out" / "greeting").read_text() == "hello old\n"


def test_a_failed_step_is_named_with_its_error(process_pool: ProcessPool, tmp_path: Path) -> None:
    spec = deploy(process_pool, tmp_path, FAILING, "trigger-fails")
    result = run_cli("trigger", str(spec), env=process_pool.env(), timeout=180)  # a spec file as the target
    assert result.code == 1, result.output
    assert result.stdout.splitlines()[-2].endswith("FAILED")
    assert re.fullmatch(
        r"prefect-init/trigger-fails: step migrate-db failed after 2 attempts: sh -c 'echo \"relation users already "
        r"exists\" >&2; exit 3': exited with 3 after \d+\.\ds \| last output: relation users already exists",
        result.stdout.splitlines()[-1]), result.stdout


def test_timeout_cancels_the_run(process_pool: ProcessPool, tmp_path: Path) -> None:
    deploy(process_pool, tmp_path, """
        version: 1
        name: {name}
        steps:
          - name: sleep
            command: [sleep, "60"]
        """, "trigger-slow")
    # 12 s, not 2: a run cancelled while its flow process is still starting (4 s on a loaded machine) is left
    # CANCELLING by Prefect's worker (its engine finds Cancelling and exits): this test is about a running step
    started = time.monotonic()
    result = run_cli("trigger", "trigger-slow", "--timeout", "12s", env=process_pool.env(), timeout=120)
    elapsed = time.monotonic() - started
    assert result.code == 1, result.output
    assert "timed out after 12s: cancelling the run" in result.stdout
    assert elapsed < 12 + 15 + 5, elapsed  # the timeout, the wait for CANCELLED, the CLI's own start
    deadline = time.monotonic() + 60
    while (state := flow_runs(process_pool, "trigger-slow")[0]["state_type"]) != "CANCELLED":
        assert time.monotonic() < deadline, state
        time.sleep(0.5)


def test_unknown_deployment_and_unreachable_api_are_exit_2(process_pool: ProcessPool) -> None:
    result = run_cli("trigger", "prefect-init/nope", env=process_pool.env())
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "prefect-init: no deployment 'prefect-init/nope' (create it with `prefect-init deploy SPEC --pool POOL`)"]
    url = f"http://127.0.0.1:{free_port()}/api"
    result = run_cli("trigger", "nope", env=clean_env(PREFECT_API_URL=url))
    assert result.code == 2
    assert result.stderr.splitlines() == [f"prefect-init: the Prefect API at {url} does not answer"]
    result = run_cli("trigger", "nope", "--timeout", "soon", env=process_pool.env())
    assert result.code == 2 and "--timeout 'soon'" in result.stderr and "Traceback" not in result.stderr


def test_prefect_run_target_waits_for_the_tagged_release_run(process_pool: ProcessPool, tmp_path: Path) -> None:
    deploy(process_pool, tmp_path, OK, "release-ok")
    deploy(process_pool, tmp_path, FAILING, "release-bad")
    waiter = write_spec(tmp_path, """
        version: 1
        name: waiter
        steps:
          - name: wait-release
            timeout: 1s
            wait:
              - prefect_run: {deployment: prefect-init/release-ok, tag: release-1.4.2}
        """, "waiter.yaml")
    env = clean_env(PREFECT_API_URL=process_pool.server.api_url)  # the wait target needs the URL, not prefect
    before = run_cli("run", "--local", str(waiter), env=env)
    assert before.code == 1
    assert "prefect_run prefect-init/release-ok tagged release-1.4.2: no run tagged release-1.4.2 yet" in before.stderr

    other = run_cli("trigger", "release-ok", "--tag", "release-1.4.1", env=process_pool.env(), timeout=180)
    assert other.code == 0, other.output
    assert run_cli("run", "--local", str(waiter), env=env).code == 1  # another release's run does not count
    tagged = run_cli("trigger", "release-ok", "--tag", "release-1.4.2", env=process_pool.env(), timeout=180)
    assert tagged.code == 0, tagged.output
    after = run_cli("run", "--local", str(waiter), env=env)
    assert after.code == 0, after.output

    failed = run_cli("trigger", "release-bad", "--tag", "release-1.4.2", env=process_pool.env(), timeout=180)
    assert failed.code == 1
    bad_waiter = write_spec(tmp_path, waiter.read_text().replace("release-ok", "release-bad"), "bad-waiter.yaml")
    result = run_cli("run", "--local", str(bad_waiter), env=env)
    assert result.code == 1
    assert re.search(r"prefect_run prefect-init/release-bad tagged release-1\.4\.2: newest run "
                     r"release-bad/[a-z]+-[a-z]+ is FAILED: step migrate-db failed: sh -c",
                     result.stderr), result.stderr
    assert "import prefect" not in result.stderr
    unknown = write_spec(tmp_path, waiter.read_text().replace("release-ok", "never-deployed"), "unknown.yaml")
    assert "no deployment prefect-init/never-deployed" in run_cli("run", "--local", str(unknown), env=env).stderr


def test_the_wait_target_does_not_import_prefect(tmp_path: Path) -> None:
    """A pod that only waits stays at local-mode cost: the target talks HTTP, prefect is never imported."""
    import subprocess
    import sys

    url = f"http://127.0.0.1:{free_port()}/api"  # nothing listens: the check runs and is refused
    code = ("import sys\n"
            "from prefect_init.prefect_adapter.wait_target import Target\n"
            "from prefect_init.kinds.wait.loop import NotReady\n"
            "target = Target.model_validate({'prefect_run': {'deployment': 'prefect-init/x', 'tag': 't',\n"
            f"                                                 'api_url': {url!r}}}}})\n"
            "try:\n"
            "    target.checker(None).check(2.0)\n"
            "except NotReady as exc:\n"
            "    print('not ready:', exc)\n"
            "print('prefect' in sys.modules, 'httpx' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["not ready: the Prefect API refused the connection", "False True"]
