"""Import benchmark (issue 30 item 9): time and peak RSS of ``prefect-init import`` against the manifest's size.

    .venv/bin/python bench/bench_import.py [--sizes 1,4,16] [--runs N]

A stream of ConfigMaps (as ``helm template`` of a big chart prints, CRDs and dashboards) with one Deployment and
its initContainers at the end, of each size in MiB; then one just over the limit
(``prefect_init.importer.MAX_MANIFEST_BYTES``), which import must refuse at once, in words. Read: the seconds and
MB per MiB should stay flat as the size grows (linear), and the refusal should cost what a tiny import costs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import PYTHON, base_env, measure, table
from prefect_init.importer import MAX_MANIFEST_BYTES

WORKLOAD = """---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      initContainers:
      - name: wait-db
        image: busybox:1.36
        command: ["sh", "-c", "until nc -z db 5432; do sleep 2; done"]
      containers:
      - name: web
        image: nginx:1.25
"""


def make_manifest(path: Path, size: int) -> None:
    block = "".join(f"    line{n}: {'x' * 60}\n" for n in range(200))
    with path.open("w") as out:
        written, index = 0, 0
        while True:
            doc = f"---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{index}\ndata:\n  big: |\n{block}"
            if written + len(doc) + len(WORKLOAD) > size:
                break
            out.write(doc)
            written, index = written + len(doc), index + 1
        out.write(WORKLOAD)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,4,16", help="MiB, comma-separated (each under the limit)")
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mib in [float(s) for s in options.sizes.split(",")]:
            size = min(int(mib * 1048576), MAX_MANIFEST_BYTES - 1024)
            manifest = Path(tmp) / f"m{mib}.yaml"
            make_manifest(manifest, size)
            argv = [PYTHON, "-m", "prefect_init.cli", "import", str(manifest), "-o", str(Path(tmp) / "out.yaml")]
            samples = [measure(argv, env=base_env()) for _ in range(options.runs)]
            wall, rss = statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)
            rows.append([f"{size / 1048576:.1f} MiB", f"{wall:.2f} s", f"{rss:.0f} MB",
                         f"{wall / (size / 1048576):.2f} s/MiB"])
        over = Path(tmp) / "over.yaml"
        make_manifest(over, 50 * 1048576)
        started = time.perf_counter()
        proc = subprocess.run([PYTHON, "-m", "prefect_init.cli", "import", str(over)], capture_output=True, text=True,
                              env=base_env())
        wall = time.perf_counter() - started
        assert proc.returncode == 2 and "MiB, over the" in proc.stderr, (proc.returncode, proc.stderr[-500:])
        rows.append(["50.0 MiB (refused)", f"{wall:.2f} s", "-", proc.stderr.strip().splitlines()[-1][:70]])
    print(table(rows, ["manifest", "wall (median)", "peak RSS", "per MiB"]))


if __name__ == "__main__":
    main()
