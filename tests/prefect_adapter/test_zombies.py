"""deployments/automations/zombie-runs.json on a real `prefect server start`, with a real `prefect worker start`:
runs whose process was SIGKILLed (a deployment's run, its worker killed first so that nothing reports the end, and
a pod's `prefect-init run`) are marked Crashed by the automation, read back from the server's own events; a healthy
run that outlives the automation's window, its heartbeats arriving, is not.

The server is this test's own: the automation is the file's as shipped but for ``within``, and it must not reach
the runs of other tests. Prefect's heartbeats are at least 30 s apart, so the test takes about a minute and a half.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import PrefectServer
from tests.helpers import CLI, run_cli, write_spec
from tests.prefectserver import ServerProcess

FILE = Path(__file__).resolve().parents[2] / "deployments" / "automations" / "zombie-runs.json"
BEAT = 30
"""PREFECT_FLOWS_HEARTBEAT_FREQUENCY of the runs here: Prefect's minimum (its setting refuses less)."""
WITHIN = 40
"""The automation's window here: one heartbeat interval and 10 s to spare (the file: three intervals)."""
HEALTHY_NAP = 55
"""How long the healthy run's step sleeps: beyond WITHIN (and the 5 s at which the server evaluates proactive
triggers), so it completes only if its heartbeats keep the automation from firing."""
SPEC = """
version: 1
name: {name}
steps:
  - name: work
    timeout: 15m
    command: [sleep, "${{NAP}}"]
"""


@pytest.fixture()
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    home = tmp_path_factory.mktemp("zombie-server")
    process = ServerProcess(home)
    process.start()
    try:
        yield PrefectServer(process.api, home, home / "prefect.db")
    finally:
        process.stop()


def _events(server: PrefectServer, **filter: Any) -> list[dict[str, Any]]:
    page: Any = server.post("/events/filter", {"limit": 50, "filter": filter})
    return list(page["events"])


def _heartbeats(server: PrefectServer, run_id: str) -> int:
    return len(_events(server, event={"name": ["prefect.flow-run.heartbeat"]},
                       resource={"id": [f"prefect.flow-run.{run_id}"]}))


def _until(what: str, check: Callable[[], bool], limit: float, log: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {limit:g} s\n{log()}"
        time.sleep(0.5)


def _kill_tree(root: psutil.Process) -> list[psutil.Process]:
    """SIGKILL a process and every process under it, all at once (as a pod is lost: nothing is told). A command
    step runs in a session of its own, so a process group alone would leave it running."""
    tree = [root, *root.children(recursive=True)]
    for process in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(tree, timeout=10)
    return tree


def test_a_killed_run_is_marked_crashed_by_the_automation_and_a_healthy_one_is_not(
        server: PrefectServer, tmp_path: Path) -> None:
    name = f"zombie-{uuid.uuid4().hex[:6]}"
    automation = json.loads(FILE.read_text())
    assert automation["trigger"]["posture"] == "Proactive" and automation["trigger"]["within"] > 2 * BEAT
    message = automation["actions"][0]["message"]
    automation["trigger"]["within"] = WITHIN
    lowered = tmp_path / "zombie-runs.json"
    lowered.write_text(json.dumps(automation))
    prefect = str(Path(sys.executable).with_name("prefect"))
    created = subprocess.run([prefect, "automation", "create", "--from-file", str(lowered)], capture_output=True,
                             text=True, env=server.client_env(), timeout=120)
    assert created.returncode == 0, created.stdout + created.stderr
    automation_id = re.search(r"with id ([0-9a-f-]{36})", created.stdout)
    assert automation_id, created.stdout

    # a process pool whose runs write to /dev/null, not to a pipe the worker reads: the healthy run outlives the
    # worker, as a Kubernetes Job's pod outlives a worker that goes away
    from prefect.workers.process import ProcessWorker

    pool = "zombies"
    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["stream_output"]["default"] = False
    server.post("/work_pools/", {"name": pool, "type": "process", "base_job_template": template})
    spec = write_spec(tmp_path, SPEC.format(name=name), f"{name}.yaml")
    deployed = run_cli("deploy", str(spec), "--pool", pool, "--base-dir", str(tmp_path), env=server.client_env())
    assert deployed.code == 0, deployed.output
    worker_log = tmp_path / "worker.log"
    heartbeat = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(BEAT)}
    with worker_log.open("w") as out:
        worker = subprocess.Popen(
            [prefect, "worker", "start", "--pool", pool, "--type", "process"], stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=server.client_env(PREFECT_WORKER_QUERY_SECONDS="1",
                                                         PREFECT_WORKER_PREFETCH_SECONDS="5", **heartbeat))
    pod_log = (tmp_path / "pod.log").open("w")
    pod = subprocess.Popen([*CLI, "run", str(spec), "--require-api"], stdout=pod_log, stderr=subprocess.STDOUT,
                           start_new_session=True,
                           env=server.client_env(NAP="600", POD_NAME="pod-lost", POD_NAMESPACE="shop", **heartbeat))
    started = time.monotonic()
    try:
        runs = {}
        for which, nap in (("lost", "600"), ("healthy", str(HEALTHY_NAP))):
            triggered = run_cli("trigger", name, "--env", f"NAP={nap}", "--no-wait", env=server.client_env())
            assert triggered.code == 0, triggered.output
            found = re.search(r"/runs/flow-run/([0-9a-f-]{36})", triggered.stdout)
            assert found, triggered.stdout
            runs[which] = found.group(1)

        def pod_run() -> str | None:
            found = server.post("/flow_runs/filter", {"flow_runs": {"name": {"any_": [f"{name}/pod-lost"]}}})
            return str(found[0]["id"]) if found else None

        _until("the pod's run exists", lambda: pod_run() is not None, 60, lambda: (tmp_path / "pod.log").read_text())
        runs["pod"] = str(pod_run())

        def state(run: str) -> str:
            return str(server.get(f"/flow_runs/{run}")["state_type"])

        def beating(run: str) -> bool:
            return state(run) == "RUNNING" and _heartbeats(server, run) >= 1

        for which, run in runs.items():
            _until(f"{which} run RUNNING with a heartbeat", partial(beating, run), 90,
                   lambda: worker_log.read_text()[-3000:])

        # the worker first (SIGKILL: it cannot report the run it started as crashed), then the lost run's process
        # and all under it, and the pod's `prefect-init run`: nothing is left to say how those runs ended
        worker_process = psutil.Process(worker.pid)
        lost = [p for p in worker_process.children(recursive=True)
                if p.environ().get("PREFECT__FLOW_RUN_ID") == runs["lost"]]
        assert lost, [p.cmdline() for p in worker_process.children(recursive=True)]
        lost_root = min(lost, key=lambda p: p.create_time())  # the process the worker started; the rest are under it
        assert any(p.cmdline()[:2] == ["sleep", "600"] for p in lost_root.children(recursive=True))
        worker_process.kill()  # the worker alone: the healthy run goes on (a session of its own, no pipe to it)
        worker.wait()
        _kill_tree(lost_root)
        _kill_tree(psutil.Process(pod.pid))
        killed_at = time.monotonic()
        assert state(runs["lost"]) == "RUNNING" and state(runs["pod"]) == "RUNNING"

        def final(run: str) -> dict[str, Any]:
            return dict(server.get(f"/flow_runs/{run}")["state"])

        def crashed(run: str) -> bool:
            return final(run)["type"] == "CRASHED"

        for which in ("lost", "pod"):
            _until(f"the {which} run marked CRASHED", partial(crashed, runs[which]), WITHIN + 30)
        crashed_after = time.monotonic() - killed_at
        _until("the healthy run COMPLETED", lambda: state(runs["healthy"]) in ("COMPLETED", "FAILED", "CRASHED"),
               HEALTHY_NAP + 60)

        # the automation did it: its message, and its own events, one firing per lost run and none for the other
        for which in ("lost", "pod"):
            assert final(runs[which])["message"] == message
            history = server.get(f"/flow_run_states/?flow_run_id={runs[which]}")
            assert [s["type"] for s in sorted(history, key=lambda s: s["timestamp"])][-2:] == ["RUNNING", "CRASHED"]
        fired = _events(server, event={"prefix": ["prefect.automation."]},
                        resource={"id": [f"prefect.automation.{automation_id.group(1)}"]})
        executed = [e for e in fired if e["event"] == "prefect.automation.action.executed"]
        targets = sorted(r["prefect.resource.id"] for e in executed for r in e["related"]
                         if r.get("prefect.resource.role") == "target")
        assert targets == sorted(f"prefect.flow-run.{runs[w]}" for w in ("lost", "pod")), fired
        assert sum(e["event"] == "prefect.automation.triggered" for e in fired) == 2, fired
        assert final(runs["healthy"])["type"] == "COMPLETED", final(runs["healthy"])
        assert _heartbeats(server, runs["healthy"]) >= 2  # positive control: it was kept alive by heartbeats
        assert f"prefect.flow-run.{runs['healthy']}" not in str(fired)
        print(f"marked crashed {crashed_after:.0f} s after the kill; whole test {time.monotonic() - started:.0f} s")
    finally:  # nothing left running after a failure above (a `sleep 600` in a session of its own)
        for process in (worker, pod):
            if process.poll() is None:
                _kill_tree(psutil.Process(process.pid))
            process.wait()
        pod_log.close()
