"""Wait-step benchmark (issue 3), measured in one run against the seed's shell loop.

    .venv/bin/python bench/bench_wait.py [--runs N]

1. Readiness latency: a TCP port opens T + U seconds after the wait began (T = 0.5, 3, 20; U uniform in [0, 2),
   one full period of the shell loop, so neither side is measured in phase with its own poll cadence; the same
   U for both sides); latency is the time from the port opening to the step's "succeeded" log line. Baseline:
   `until <connect>; do sleep 2; done`, latency to its exit. Target: median <= 0.25 s, worst <= 0.5 s.
2. Three dependencies ready at 1, 2 and 3 s: one wait step with three targets against three sequential
   initContainers running the sleep loop. Target: <= 3.3 s against ~6 s.
3. Attempts per second per target at the cap (an HTTP server answering 503; requests counted after the first
   second). Target: <= 4.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BIN, base_env, table

SHELL_LOOP = "until (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; do sleep 2; done"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def open_port_at(port: int, when: float, opened: list[float], listeners: list[socket.socket]) -> threading.Thread:
    def run() -> None:
        time.sleep(max(0.0, when - time.time()))
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen(64)
        opened.append(time.time())
        listeners.append(s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def spec_for(work: Path, ports: list[int]) -> Path:
    targets = "\n".join(f"      - tcp: 127.0.0.1:{p}" for p in ports)
    path = work / f"wait-{'-'.join(map(str, ports))}.yaml"
    path.write_text(f"version: 1\nname: bench-wait\nsteps:\n  - name: deps\n    timeout: 60s\n    wait:\n{targets}\n")
    return path


def _stamp(line: str) -> float:
    return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp()


def prefect_init_latency(work: Path, ready_in: float) -> float:
    port = free_port()
    spec = spec_for(work, [port])
    opened: list[float] = []
    listeners: list[socket.socket] = []
    proc = subprocess.Popen([str(BIN / "prefect-init"), "run", str(spec), "--local"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=base_env())
    open_port_at(port, time.time() + ready_in, opened, listeners).join()
    _, stderr = proc.communicate(timeout=120)
    for s in listeners:
        s.close()
    done = next(ln for ln in stderr.splitlines() if "[deps] succeeded" in ln)
    return _stamp(done) - opened[0]


def shell_latency(ready_in: float) -> float:
    port = free_port()
    opened: list[float] = []
    listeners: list[socket.socket] = []
    proc = subprocess.Popen(["bash", "-c", SHELL_LOOP.format(port=port)])
    open_port_at(port, time.time() + ready_in, opened, listeners).join()
    proc.wait(timeout=120)
    finished = time.time()
    for s in listeners:
        s.close()
    return finished - opened[0]


def three_dependencies(work: Path) -> tuple[float, float]:
    ports = [free_port() for _ in range(3)]
    opened: list[float] = []
    listeners: list[socket.socket] = []
    start = time.time()
    threads = [open_port_at(p, start + delay, opened, listeners) for p, delay in zip(ports, (1, 2, 3), strict=True)]
    subprocess.run([str(BIN / "prefect-init"), "run", str(spec_for(work, ports)), "--local"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=base_env())
    ours = time.time() - start
    for t in threads:
        t.join()
    for s in listeners:
        s.close()
    ports = [free_port() for _ in range(3)]
    opened.clear()
    listeners.clear()
    start = time.time()
    threads = [open_port_at(p, start + delay, opened, listeners) for p, delay in zip(ports, (1, 2, 3), strict=True)]
    for p in ports:  # three initContainers, one after the other
        subprocess.run(["bash", "-c", SHELL_LOOP.format(port=p)], check=True)
    shell = time.time() - start
    for s in listeners:
        s.close()
    return ours, shell


def attempts_per_second(work: Path, seconds: float = 5.0) -> float:
    hits: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(time.monotonic())
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    spec = work / "rate.yaml"
    spec.write_text(f"version: 1\nname: bench-rate\nsteps:\n  - name: deps\n    timeout: {seconds}s\n    retries: 0\n"
                    f"    wait:\n      - http: http://127.0.0.1:{httpd.server_address[1]}/\n")
    subprocess.run([str(BIN / "prefect-init"), "run", str(spec), "--local"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=base_env())
    httpd.shutdown()
    first = hits[0]
    window = [h for h in hits if h >= first + 1.0]
    return (len(window) - 1) / (window[-1] - window[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-wait-"))
    rng = random.Random(args.seed)

    print(f"## Readiness latency: port opened T + U(0, 2) s after the wait began ({args.runs} runs each)\n")
    rows = []
    for ready_in in (0.5, 3.0, 20.0):
        offsets = [rng.uniform(0, 2) for _ in range(args.runs)]
        ours = [prefect_init_latency(work, ready_in + u) for u in offsets]
        shell = [shell_latency(ready_in + u) for u in offsets]
        rows.append((f"{ready_in:g} s", f"{statistics.median(ours):.3f}", f"{max(ours):.3f}",
                     f"{statistics.median(shell):.3f}", f"{max(shell):.3f}"))
    print(table(rows, ("ready at", "prefect-init median s", "prefect-init worst s", "sleep-2 loop median s",
                       "sleep-2 loop worst s")))

    print("\n## Three dependencies ready at 1, 2 and 3 s\n")
    parallel_wall, sequential_wall = three_dependencies(work)
    print(table([("one wait step, three targets", f"{parallel_wall:.2f}"),
                 ("three sequential sleep-loop initContainers", f"{sequential_wall:.2f}")], ("what", "wall s")))

    print("\n## Attempts per second per target at the cap (HTTP 503 for 5 s)\n")
    rate = attempts_per_second(work)
    print(f"{rate:.2f} attempts/s (cap 250 ms)")


if __name__ == "__main__":
    main()
