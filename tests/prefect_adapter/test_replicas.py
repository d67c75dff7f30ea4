"""A rollout of 20 replicas at once, each pod's init run mirrored into one Prefect server on PostgreSQL."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx

from tests.helpers import CLI, clean_env, write_spec
from tests.prefectserver import ServerProcess, settled_task_runs

REPLICAS = 20


def test_twenty_replicas_at_once(prefect_on_postgres: ServerProcess, tmp_path: Path) -> None:
    server = prefect_on_postgres
    name = f"rollout-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        steps:
          - name: wait-api
            wait:
              - tcp: 127.0.0.1:{server.port}
          - name: dirs
            after: []
            files: {{dirs: [{{path: out, mode: "0755"}}]}}
          - name: hello
            after: [wait-api, dirs]
            command: [echo, hello]
        """)
    env = clean_env(PREFECT_API_URL=server.api, PREFECT_HOME=str(tmp_path / "client"))
    procs = [subprocess.Popen([*CLI, "run", str(spec), "--require-api"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(REPLICAS)]
    outputs = [(p.wait(timeout=300), p.communicate()[1]) for p in procs]
    assert [code for code, _ in outputs] == [0] * REPLICAS, [err for code, err in outputs if code][:2]
    for _, stderr in outputs:
        assert "warning" not in stderr.lower(), stderr  # nothing went unrecorded
    api = httpx.Client(base_url=server.api, timeout=60)
    runs = api.post("/flow_runs/filter", json={"flow_runs": {"name": {"any_": [name]}}}).json()
    assert len(runs) == REPLICAS and {r["state_type"] for r in runs} == {"COMPLETED"}
    tasks = settled_task_runs(server.api, [r["id"] for r in runs], 3 * REPLICAS)
    assert len(tasks) == 3 * REPLICAS and {t["state_type"] for t in tasks} == {"COMPLETED"}
    log = server.log.read_text()
    assert " 500 " not in log and "Internal Server Error" not in log and "Traceback" not in log
