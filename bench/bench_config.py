"""Config-step benchmark (issue 5): a 10 MB YAML config downloaded and validated, in one run.

    .venv/bin/python bench/bench_config.py [--runs N]

prefect-init (a config step with a required key, local mode) against the seed's two initContainers:
`curl -o app.yaml URL` then `python -c 'import yaml; yaml.safe_load(open("app.yaml"))'` (PyYAML's default pure
Python SafeLoader, as the seed wrote it). Wall and peak RSS (the larger of curl's and python's for the
baseline). Target: <= 1.5x the baseline's wall, without several copies of the body in memory.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BIN, PYTHON, base_env, measure, table


def make_config(path: Path, size: int = 10_000_000) -> None:
    lines = ["database:\n  host: db\n  port: 5432\nservices:\n"]
    total, i = len(lines[0]), 0
    while total < size:
        entry = (f"  - name: service-{i}\n    url: http://service-{i}.default.svc:8080/api\n"
                 f"    replicas: {i % 7}\n    tags: [a, b, c]\n")
        lines.append(entry)
        total += len(entry)
        i += 1
    path.write_text("".join(lines))


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-config-"))
    served = work / "served"
    served.mkdir()
    make_config(served / "app.yaml")
    size_mb = (served / "app.yaml").stat().st_size / 1e6
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/app.yaml"
    spec = work / "init.yaml"
    spec.write_text(f"version: 1\nname: bench-config\nsteps:\n  - name: config\n    config:\n      url: {url}\n"
                    f"      dest: out/app.yaml\n      required: [database.host, database.port]\n")
    env = base_env()
    ours, curl, load = [], [], []
    for _ in range(args.runs):  # interleaved: both sides see the same machine load
        (work / "out" / "app.yaml").unlink(missing_ok=True)
        ours.append(measure([str(BIN / "prefect-init"), "run", str(spec), "--local"], env))
        dest = work / "curl-app.yaml"
        dest.unlink(missing_ok=True)
        curl.append(measure(["curl", "-sf", "-o", str(dest), url], env))
        load.append(measure([PYTHON, "-c", f"import yaml; yaml.safe_load(open({str(dest)!r}))"], env))
    httpd.shutdown()
    our_wall = statistics.median(w for w, _ in ours)
    base_wall = statistics.median(c[0] + p[0] for c, p in zip(curl, load, strict=True))
    base_rss = statistics.median(max(c[1], p[1]) for c, p in zip(curl, load, strict=True))
    print(f"## A {size_mb:.1f} MB YAML config, downloaded and validated (median of {args.runs} runs)\n")
    print(table([
        ("prefect-init config step", f"{our_wall:.3f}", f"{statistics.median(r for _, r in ours):.0f}",
         f"{our_wall / base_wall:.2f}x"),
        ("curl + python yaml.safe_load", f"{base_wall:.3f}", f"{base_rss:.0f}", "1x"),
        ("  of which curl", f"{statistics.median(w for w, _ in curl):.3f}",
         f"{statistics.median(r for _, r in curl):.0f}", ""),
        ("  of which yaml.safe_load", f"{statistics.median(w for w, _ in load):.3f}",
         f"{statistics.median(r for _, r in load):.0f}", ""),
    ], ("what", "wall s", "peak RSS MB", "ratio")))


if __name__ == "__main__":
    main()
