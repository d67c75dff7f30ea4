"""`optional: true` in Prefect, against a real `prefect server start`: the optional step's task run is Failed,
the flow run Completed with a message naming it, whether `prefect-init run` mirrors the run or Prefect's own
engine runs the deployment's flow."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import PrefectServer
from tests.helpers import OPTIONAL_SPEC, run_cli, write_spec
from tests.prefectserver import settled_task_runs


def _check_record(server: PrefectServer, run: dict[str, Any], name: str) -> None:
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["state"]["message"] == "All required steps succeeded; optional steps failed: warm-cache."
    tasks = {t["name"]: t for t in settled_task_runs(server.api_url, [run["id"]], 4)}
    assert {n: t["state_type"] for n, t in tasks.items()} == {
        "prepare": "COMPLETED", "warm-cache": "FAILED", "report-cache": "PENDING", "serve": "COMPLETED"}
    assert tasks["warm-cache"]["run_count"] == 2
    assert tasks["report-cache"]["state_name"] == "NotReady"
    artifact, = server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
    data = artifact["data"]
    assert data.startswith(f"# prefect-init: {name} - succeeded (optional steps failed: warm-cache)\n"), data
    assert "| warm-cache (optional) | command | failed | 2 |" in data
    assert "| report-cache (optional) | command | skipped | 0 |" in data
    assert "| serve | command | succeeded | 1 |" in data


def test_a_mirrored_run_completes_when_only_an_optional_step_failed(
        prefect_server: PrefectServer, tmp_path: Path) -> None:
    name = f"opt-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, OPTIONAL_SPEC.format(name=name))
    result = run_cli("run", str(spec), "--require-api", env=prefect_server.client_env())
    assert result.code == 0, result.output
    assert "warning" not in result.stderr, result.stderr  # everything was recorded
    run = prefect_server.flow_run_named(name)
    _check_record(prefect_server, run, name)
    deadline = time.monotonic() + 30  # events are persisted a moment after they arrive
    while True:
        page = httpx.post(f"{prefect_server.api_url}/events/filter", timeout=30, json={"limit": 50, "filter": {
            "event": {"prefix": ["prefect-init.run."]}, "resource": {"labels": {"prefect-init.spec": name}}}}).json()
        if page["events"] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    event, = page["events"]
    assert event["event"] == "prefect-init.run.succeeded"
    assert event["payload"]["optional_failed"] == ["warm-cache"] and "failed_step" not in event["payload"]


def test_the_deployment_flow_completes_when_only_an_optional_step_failed(
        prefect_server: PrefectServer, tmp_path: Path) -> None:
    """The flow a worker runs (`run_spec`), run by Prefect's own engine: it decides the flow run's final state."""
    name = f"opt-flow-{uuid.uuid4().hex[:6]}"
    script = tmp_path / "run_flow.py"
    script.write_text(textwrap.dedent(f"""
        from prefect_init.flows.spec_flow import run_spec

        run_spec(spec_text={OPTIONAL_SPEC.format(name=name)!r}, base_dir={str(tmp_path)!r})
    """))
    proc = subprocess.run([sys.executable, str(script)], env=prefect_server.client_env(), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_record(prefect_server, prefect_server.flow_run_named(name), name)
