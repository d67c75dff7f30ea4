"""What one pod start costs against Prefect Cloud's rate limits, counted as Cloud counts it, and the pod starts a
minute each tier absorbs, at the defaults and with PREFECT_INIT_API_LOG_LEVEL=WARNING.

    .venv/bin/python bench/bench_cloud.py [--runs 5]

A real `prefect server start` (SQLite) behind tests.httpservers.CloudProxy, which counts every call in Cloud's two
buckets: API requests (every call but the writes of logs and events) and logs + events (each line and event
singly). The spec: six steps as an init pipeline has them (a wait, a config, a migration, files, a build, a
warm-up), each printing five lines: 30 lines of output. Medians of N runs. No Prefect Cloud can be reached from
here: the tiers' limits are those of its rate-limit page (per minute: Hobby 625 requests / 2,000 logs + events,
Starter 1,250 / 2,800, Team 2,500 / 8,000, Pro 5,000 / 40,000).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BIN, base_env, prefect_server, table
from tests.httpservers import cloud_proxy

TIERS = {"Hobby": (625, 2_000), "Starter": (1_250, 2_800), "Team": (2_500, 8_000), "Pro": (5_000, 40_000)}
STEPS = ["wait-db", "config", "migrate", "dirs", "build", "warm-cache"]


def spec(directory: Path) -> Path:
    name = f"bench-cloud-{uuid.uuid4().hex[:6]}"
    lines = "\n".join(f"""  - name: {step}
    command: [sh, -c, "for i in 1 2 3 4 5; do echo {step} line $i; done"]""" for step in STEPS)
    path = directory / f"{name}.yaml"
    path.write_text(f"version: 1\nname: {name}\nsteps:\n{lines}\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cloud-"))
    medians: dict[str, dict[str, float]] = {}
    with prefect_server() as api:
        for level in ("DEBUG", "WARNING"):
            samples: list[dict[str, int]] = []
            for _ in range(args.runs):
                with cloud_proxy(api) as proxy:
                    env = base_env(PREFECT_API_URL=proxy.url, PREFECT_HOME=str(work / "home"),
                                   PREFECT_INIT_API_LOG_LEVEL=level)
                    done = subprocess.run([str(BIN / "prefect-init"), "run", str(spec(work)), "--require-api"], env=env,
                                          capture_output=True, text=True, check=False)
                    assert done.returncode == 0, done.stderr
                    samples.append(proxy.counts())
            medians[level] = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
    rows = [[level, f"{m['requests']:g}", f"{m['log lines']:g}", f"{m['events']:g}",
             f"{m['log lines'] + m['events']:g}"] for level, m in medians.items()]
    print(f"Per pod start (median of {args.runs}), a six-step spec printing 30 lines:")
    print(table(rows, ["PREFECT_INIT_API_LOG_LEVEL", "API requests", "log lines", "events", "logs + events"]))
    starts = []
    for tier, (requests, bulk) in TIERS.items():
        cells = [tier]
        for m in medians.values():
            cells.append(f"{min(requests / m['requests'], bulk / (m['log lines'] + m['events'])):,.0f}")
        starts.append(cells)
    print("\nPod starts a minute each tier absorbs (the lower of its two buckets):")
    print(table(starts, ["tier", "defaults (DEBUG)", "WARNING"]))


if __name__ == "__main__":
    main()
