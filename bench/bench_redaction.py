"""Redaction benchmark (issue 30 item 7): the cost of masking every registered value in its escaped forms.

    .venv/bin/python bench/bench_redaction.py [--runs N]

For N registered values (each masked in ~11 forms: as it is, JSON, repr, shell, SQL, URL-encoded), the time to
register them all (a Vault secret's keys arrive at once), the first redact after them (the one compile of the one
pattern), and a log line's redact after that. Targets: registering and compiling 1,000 values under 1 s (a Vault
secret with many keys must not hold a step back); a 200-character line under 1 ms with 1,000 values.

Before the pattern was compiled lazily, each registration compiled it again: 300 values took 8 s, 1,000 took
180 s on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prefect_init.runtime.redaction import Redactor


def once(count: int, run: int, lines: int = 2000) -> tuple[float, float, float]:
    """(register seconds, first redact seconds, seconds per line) for ``count`` values, other ones each ``run``
    (``re`` caches a pattern it compiled: the same values twice would time the cache)."""
    redactor = Redactor()
    started = time.perf_counter()
    for i in range(count):
        redactor.register(f"secret-{i:05d}-{run}-it's \"quoted\"")
    registered = time.perf_counter() - started
    line = "x " * 50 + f"secret-00042-{run}-it's \"quoted\"" + " y" * 50
    started = time.perf_counter()
    masked = redactor.redact(line)
    first = time.perf_counter() - started
    assert count <= 42 or "secret-00042" not in masked
    started = time.perf_counter()
    for _ in range(lines):
        redactor.redact(line)
    return registered, first, (time.perf_counter() - started) / lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("| values | register (s) | first redact: compile (s) | a line (µs) |")
    print("| ---: | ---: | ---: | ---: |")
    for count in (0, 10, 100, 1000, 3000):
        runs = [once(count, run) for run in range(args.runs)]
        register, first, per_line = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"| {count} | {register:.3f} | {first:.3f} | {per_line * 1e6:.0f} |")


if __name__ == "__main__":
    main()
