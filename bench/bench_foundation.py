"""Foundation benchmark (issue 2): local mode and Prefect mode against plain Prefect, measured in one run.

    .venv/bin/python bench/bench_foundation.py [--runs N]

1. Local mode, one-step spec: wall and peak RSS against `python -c pass` and a plain one-task Prefect flow in
   ephemeral mode (no API configured: Prefect starts its temporary server). Targets: <= 0.5 s, <= 80 MB.
2. Prefect mode, four-step spec, against a plain Prefect flow with four equivalent tasks, both on the same
   `prefect server start`. Target: no slower than the plain flow (aim 0.8x). The split: imports (measured
   alone), the steps themselves (their durations from the status file) and the rest (API calls, engine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BIN, PYTHON, base_env, measure, median_of, prefect_server, table

ONE_STEP = """
version: 1
name: bench-one
steps:
  - name: touch
    command: [touch, marker]
"""

FOUR_STEPS = """
version: 1
name: bench-four
status_file: status.json
steps:
  - name: dirs
    files: {dirs: [{path: out/a, mode: "0755"}, {path: out/b, mode: "0700"}]}
  - name: one
    command: [echo, one]
  - name: two
    command: [echo, two]
  - name: three
    command: [echo, three]
"""

PLAIN_ONE = """
import subprocess
from prefect import flow, task

@task
def touch():
    subprocess.run(["touch", "marker"], check=True)

@flow
def plain():
    touch()

plain()
"""

PLAIN_FOUR = """
import os, subprocess
from prefect import flow, task

@task
def dirs():
    os.makedirs("out/a", exist_ok=True); os.chmod("out/a", 0o755)
    os.makedirs("out/b", exist_ok=True); os.chmod("out/b", 0o700)

@task
def echo(word):
    subprocess.run(["echo", word], check=True, capture_output=True)

@flow
def plain_four():
    dirs()
    echo("one")
    echo("two")
    echo("three")

plain_four()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-foundation-"))
    (work / "one.yaml").write_text(ONE_STEP)
    (work / "four.yaml").write_text(FOUR_STEPS)
    (work / "plain_one.py").write_text(textwrap.dedent(PLAIN_ONE))
    (work / "plain_four.py").write_text(textwrap.dedent(PLAIN_FOUR))
    cli = str(BIN / "prefect-init")
    local_env = base_env(PREFECT_HOME=str(work / "home-local"))

    print(f"## Local mode, one-step spec (median of {args.runs} runs)\n")
    py_wall, py_rss = median_of([PYTHON, "-c", "pass"], args.runs, local_env, cwd=str(work))
    pi_wall, pi_rss = median_of([cli, "run", str(work / "one.yaml")], args.runs, local_env, cwd=str(work))
    eph_env = base_env(PREFECT_HOME=str(work / "home-ephemeral"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    plain_runs = max(3, args.runs // 2)
    pf_wall, pf_rss = median_of([PYTHON, str(work / "plain_one.py")], plain_runs, eph_env, cwd=str(work))
    rows = [
        ("`python -c pass`", f"{py_wall:.3f}", f"{py_rss:.0f}", "-"),
        ("prefect-init run (local mode)", f"{pi_wall:.3f}", f"{pi_rss:.0f}", f"{pi_wall / pf_wall:.3f}x"),
        (f"plain Prefect one-task flow, ephemeral ({plain_runs} runs)", f"{pf_wall:.3f}", f"{pf_rss:.0f}", "1x"),
    ]
    print(table(rows, ("what", "wall s", "peak RSS MB", "vs plain Prefect")))

    print(f"\n## Prefect mode, four-step spec, same `prefect server start` (median of {args.runs} runs)\n")
    with prefect_server() as url:
        env = base_env(PREFECT_API_URL=url, PREFECT_HOME=str(work / "home-client"),
                       PREFECT_SERVER_ANALYTICS_ENABLED="false")
        measure([PYTHON, str(work / "plain_four.py")], env, cwd=str(work))  # warm the server's caches once
        ours, plain, steps = [], [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            ours.append(measure([cli, "run", str(work / "four.yaml"), "--require-api"], env, cwd=str(work)))
            status = json.loads((work / "status.json").read_text())
            steps.append(sum(s["duration_s"] for s in status["steps"]))
            plain.append(measure([PYTHON, str(work / "plain_four.py")], env, cwd=str(work)))
        imports = [measure([PYTHON, "-c", "import prefect_init.cli, prefect_init.flows.spec_flow"], env)[0]
                   for _ in range(args.runs)]
    our_wall = statistics.median(w for w, _ in ours)
    plain_wall = statistics.median(w for w, _ in plain)
    imp, stp = statistics.median(imports), statistics.median(steps)
    rows = [
        ("prefect-init run (Prefect mode)", f"{our_wall:.3f}", f"{statistics.median(r for _, r in ours):.0f}",
         f"{our_wall / plain_wall:.2f}x"),
        ("plain Prefect flow, four tasks", f"{plain_wall:.3f}", f"{statistics.median(r for _, r in plain):.0f}", "1x"),
    ]
    print(table(rows, ("what", "wall s", "peak RSS MB", "ratio")))
    print(f"\nSplit of prefect-init's {our_wall:.3f} s: imports (interpreter + prefect + prefect_init) {imp:.3f} s, "
          f"the four steps themselves {stp:.3f} s, the rest (API calls, task engine, artifact) "
          f"{our_wall - imp - stp:.3f} s.")


if __name__ == "__main__":
    main()
