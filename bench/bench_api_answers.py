"""What a bad Prefect API answer costs a pod (issue 30): time to the first step and peak memory of
`prefect-init run`, for each bad answer against no API and a healthy stand-in.

    .venv/bin/python bench/bench_api_answers.py [--runs 5]

Each case runs the real CLI (`python -m prefect_init.cli run`) on a one-step spec (`touch` a marker) with
PREFECT_API_URL pointing at a raw HTTP server on 127.0.0.1 (tests/security/test_api_answers.py's BadApi) that
answers badly: an HTML page (an SSO login), `{}` instead of a flow, a body trickled a byte at a time, headers
trickled on /health, an endless body. Time to first step: from launch to the marker's modification time. Peak
memory: the child's own peak RSS (GNU time's %M). Medians of N runs, interleaved (one of each case, N times).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import GNU_TIME, PYTHON, base_env, table
from tests.security.test_api_answers import (
    BadApi,
    bad_api,
    empty_object,
    endless_body,
    good_api,
    healthy_then,
    html_page,
    trickled_body,
    trickled_headers,
)

Behaviour = Callable[[BadApi, socket.socket, str, str], None]

CASES: list[tuple[str, Behaviour | None]] = [
    ("no API (local run)", None),
    ("a healthy API (a stand-in that records)", good_api),
    ("an HTML page (an SSO login) to every call", html_page),
    ("`{}` instead of a flow", healthy_then(empty_object)),
    ("a body trickled a byte every 50 ms", healthy_then(trickled_body)),
    ("headers trickled on /health", trickled_headers),
    ("an endless body (3 GiB offered)", healthy_then(endless_body)),
]


def one_run(behaviour: Behaviour | None, work: Path) -> tuple[float, float, float, int]:
    """Seconds to the first step, wall seconds, peak RSS (MB), exit code."""
    directory = Path(tempfile.mkdtemp(dir=work))
    marker = directory / "marker"
    spec = directory / "init.yaml"
    spec.write_text(f"version: 1\nname: bench-api\nstatus_file: status.json\nsteps:\n"
                    f"  - name: mark\n    command: [touch, {marker}]\n")
    report = directory / "time.txt"

    def launch(url: str | None) -> tuple[float, float, int]:
        env = base_env(PREFECT_HOME=str(directory / "home"), **({"PREFECT_API_URL": url} if url else {}))
        argv = [PYTHON, "-m", "prefect_init.cli", "run", str(spec)]
        if os.path.exists(GNU_TIME):
            argv = [GNU_TIME, "-f", "%M", "-o", str(report), *argv]
        launched = time.time()
        started = time.perf_counter()
        proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        return launched, time.perf_counter() - started, proc.returncode

    if behaviour is None:
        launched, wall, code = launch(None)
    else:
        with bad_api(behaviour) as api:
            launched, wall, code = launch(api.url)
    first = marker.stat().st_mtime - launched if marker.exists() else float("nan")
    lines = report.read_text().split() if report.exists() else []
    peak = int(lines[-1]) / 1024 if lines else float("nan")
    return first, wall, peak, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    samples: dict[str, list[tuple[float, float, float, int]]] = {name: [] for name, _ in CASES}
    with tempfile.TemporaryDirectory(prefix="bench-api-") as work:
        for _ in range(args.runs):
            for name, behaviour in CASES:
                samples[name].append(one_run(behaviour, Path(work)))
    rows = []
    for name, _ in CASES:
        runs = samples[name]
        codes = sorted({code for *_, code in runs})
        rows.append([name, f"{statistics.median(r[0] for r in runs):.2f} s",
                     f"{statistics.median(r[1] for r in runs):.2f} s",
                     f"{statistics.median(r[2] for r in runs):.0f} MB", ", ".join(map(str, codes))])
    print(f"## A bad Prefect API answer: medians of {args.runs} runs\n")
    print(table(rows, ["the API answers", "time to first step", "wall", "peak RSS", "exit code(s)"]))


if __name__ == "__main__":
    main()
