"""Foundation benchmark (issue 2): local mode and Prefect mode against plain Prefect, measured in one run.

    .venv/bin/python bench/bench_foundation.py [--runs N]

1. Local mode, one-step spec: wall and peak RSS against `python -c pass` and a plain one-task Prefect flow in
   ephemeral mode (no API configured: Prefect starts its temporary server). Targets: <= 0.5 s, <= 80 MB.

Prefect mode against a plain flow is measured by ``bench/bench_prefect_mode.py`` (it uses the specs below).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BIN, PYTHON, base_env, median_of, table

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
    (work / "plain_one.py").write_text(textwrap.dedent(PLAIN_ONE))
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


if __name__ == "__main__":
    main()
