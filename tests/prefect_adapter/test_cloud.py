"""The mirror's manners with an API that refuses some calls and keeps Prefect Cloud's limits: a real `prefect
server start` behind a proxy on 127.0.0.1 (tests.httpservers.CloudProxy) that answers 411 to a write without
Content-Length and 413 to a body above 5 MiB, as Cloud does, refuses the calls a test names, and counts every call
as Cloud's two rate-limit buckets count them. No Prefect Cloud can be reached from here: the limits are those of
its rate-limit page."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from prefect_init.prefect_adapter.observer import MAX_BODY, Observer
from prefect_init.prefect_adapter.rest import PrefectRest
from tests.conftest import PrefectServer
from tests.helpers import run_cli, write_spec
from tests.httpservers import cloud_proxy
from tests.prefectserver import settled_task_runs


def _all_logs(server: PrefectServer, flow_run_id: str, at_least: int, limit: float = 30) -> list[dict[str, Any]]:
    """Every log line of a flow run (200 a page), once there are ``at_least`` (the server writes them a moment
    after it took them)."""
    deadline = time.monotonic() + limit
    while True:
        logs: list[dict[str, Any]] = []
        while True:
            page = server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200,
                                                "offset": len(logs), "sort": "TIMESTAMP_ASC"})
            logs += page
            if len(page) < 200:
                break
        if len(logs) >= at_least or time.monotonic() > deadline:
            return logs
        time.sleep(0.3)


def test_one_refused_kind_of_call_loses_that_call_only(prefect_server: PrefectServer, tmp_path: Path) -> None:
    """A server that answers 422 to every artifact: the flow run, each step's task run, every log line and the
    final state are recorded; the warning line names what was refused and how."""
    name = f"refused-{uuid.uuid4().hex[:8]}"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        steps:
          - name: first
            command: [echo, first line]
          - name: second
            command: [echo, second line]
    """)
    with cloud_proxy(prefect_server.api_url,
                     refuse=lambda method, path: 422 if (method, path) == ("POST", "/api/artifacts/") else None
                     ) as proxy:
        result = run_cli("run", str(spec), "--require-api", env=prefect_server.client_env(PREFECT_API_URL=proxy.url))
    assert result.code == 0, result.output
    assert [c.status for c in proxy.calls if c.path == "/api/artifacts/"] == [422]  # the refusal happened
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == ["warning: the Prefect API refused part of the record: 1 artifact "
                        "(HTTP 422 on POST /artifacts/)"], result.stderr
    run = prefect_server.flow_run_named(name)
    assert run["state_type"] == "COMPLETED"
    tasks = settled_task_runs(prefect_server.api_url, [run["id"]], 2)
    assert sorted((t["name"], t["state_type"]) for t in tasks) == [("first", "COMPLETED"), ("second", "COMPLETED")]
    messages = [entry["message"] for entry in _all_logs(prefect_server, run["id"], 1)]
    assert "first line" in messages and "second line" in messages
    assert any(m.startswith("Finished in state Completed") for m in messages), messages
    assert not prefect_server.post("/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})


def test_large_batches_are_split_and_every_call_has_a_length(prefect_server: PrefectServer) -> None:
    """1,200 log lines of 6,000 characters (7 MB) queued before the observer's thread takes any (as when the API
    was away for a while): they go as several requests of at most 4 MiB, none refused (no 411, no 413), and every
    line is recorded. A run's own output is too slow on this machine to queue that much at once."""
    flow: Any = prefect_server.post("/flows/", {"name": "prefect-init"})
    run: Any = prefect_server.post("/flow_runs/", {"flow_id": flow["id"], "name": f"big-{uuid.uuid4().hex[:8]}"})
    lines = 1200
    with cloud_proxy(prefect_server.api_url) as proxy:
        observer = Observer(PrefectRest(proxy.url), "big", {}, flow_run_id=run["id"], heartbeat_seconds=None)
        for n in range(lines):
            observer.log(None, "INFO", f"{n:05d}" + "x" * 5995)
        observer.start({}, [])
        assert observer.close(60) is None
    statuses = {c.status for c in proxy.calls}
    assert 411 not in statuses and 413 not in statuses, statuses
    logs = [c for c in proxy.calls if c.path == "/api/logs/"]
    assert len(logs) >= 2 and all(c.body_bytes <= MAX_BODY for c in logs), [c.body_bytes for c in logs]
    assert max(c.body_bytes for c in logs) > MAX_BODY // 2, [c.body_bytes for c in logs]
    assert observer.sent["log lines"] == lines and observer.sent["requests"] == len(logs)
    recorded = [e["message"] for e in _all_logs(prefect_server, run["id"], lines, limit=60)]
    numbered = sorted(m[:5] for m in recorded if len(m) == 6000)
    assert numbered == [f"{n:05d}" for n in range(lines)], (len(numbered), lines)


def test_the_log_level_setting_keeps_a_pod_inside_a_tier(prefect_server: PrefectServer, tmp_path: Path) -> None:
    """PREFECT_INIT_API_LOG_LEVEL=WARNING: the steps' INFO lines stay on stderr only; warnings, errors, the task
    runs and the final state still go. Counted as Cloud counts: fewer log lines, the same states."""
    counts = {}
    for level in ("DEBUG", "WARNING"):
        name = f"level-{level.lower()}-{uuid.uuid4().hex[:6]}"
        spec = write_spec(tmp_path, f"""
            version: 1
            name: {name}
            steps:
              - name: talk
                command: [sh, -c, "for i in 1 2 3 4 5 6 7 8; do echo line $i; done"]
              - name: flaky
                retries: 1
                retry_delay: 10ms
                command: [sh, -c, "test -e {tmp_path}/{name}.once || {{ touch {tmp_path}/{name}.once; exit 3; }}"]
        """, f"{name}.yaml")
        with cloud_proxy(prefect_server.api_url) as proxy:
            result = run_cli("run", str(spec), "--require-api", env=prefect_server.client_env(
                PREFECT_API_URL=proxy.url, PREFECT_INIT_API_LOG_LEVEL=level))
        assert result.code == 0, result.output
        assert "line 8" in result.stderr  # stderr keeps every line, whatever goes to Prefect
        run = prefect_server.flow_run_named(name)
        tasks = settled_task_runs(prefect_server.api_url, [run["id"]], 2)
        assert {t["name"]: t["run_count"] for t in tasks} == {"talk": 1, "flaky": 2}
        messages = [e["message"] for e in _all_logs(prefect_server, run["id"], 1)]
        retry = [m for m in messages if "attempt 1 failed" in m]
        assert len(retry) == 1, messages  # a WARN line: sent at both levels
        assert ("line 8" in messages) is (level == "DEBUG"), messages
        counts[level] = proxy.counts()
    assert counts["WARNING"]["log lines"] < counts["DEBUG"]["log lines"] - 8, counts
    assert counts["WARNING"]["events"] == counts["DEBUG"]["events"], counts


def test_a_bad_log_level_setting_does_not_stop_the_pod(prefect_server: PrefectServer, tmp_path: Path) -> None:
    name = f"badlevel-{uuid.uuid4().hex[:6]}"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        steps:
          - name: talk
            command: [echo, still sent]
    """)
    result = run_cli("run", str(spec), "--require-api",
                     env=prefect_server.client_env(PREFECT_INIT_API_LOG_LEVEL="loud"))
    assert result.code == 0, result.output
    assert ("warning: PREFECT_INIT_API_LOG_LEVEL='loud' is not DEBUG, INFO, WARNING, ERROR or OFF; every log line "
            "goes to Prefect") in result.stderr
    run = prefect_server.flow_run_named(name)
    assert "still sent" in [e["message"] for e in _all_logs(prefect_server, run["id"], 1)]
