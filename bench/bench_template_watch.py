"""Template watch benchmark (issue 30, item 6): what the deadline's trace function costs a normal template.

    .venv/bin/python bench/bench_template_watch.py [--runs N]

Renders an nginx-like template (loops, a macro, filters, conditionals; ~200 KB of output) with the same
sandboxed environment as the ``template`` step, once bare and once inside ``_watched`` (the trace function that
stops the rendering at the step's deadline and on SIGTERM). Prints the median of each, the ratio and the cost
in milliseconds. Target: the watch adds at most 50 ms to such a template (it renders once per pod start). The
ratio is reported, not held: ``sys.settrace`` calls a Python function for every call in the thread, so the
watched rendering is several times the bare one, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prefect_init.kinds.template import _environment, _watched
from prefect_init.runtime.context import RunContext

TEMPLATE = """\
{% macro location(path, upstream) -%}
    location {{ path }} {
        proxy_pass http://{{ upstream }};
        proxy_set_header Host $host;
    }
{%- endmacro %}
worker_processes {{ workers }};
events { worker_connections {{ connections }}; }
http {
{% for server in servers %}
    server {
        listen {{ server.port }};
        server_name {{ server.names | join(' ') }};
{% for path in server.paths %}
{% if path.startswith('/api') %}
        {{ location(path, 'api') }}
{% else %}
        {{ location(path, server.names[0] | upper) }}
{% endif %}
{% endfor %}
    }
{% endfor %}
}
"""

VALUES = {
    "workers": 4,
    "connections": 1024,
    "servers": [{"port": 8000 + i, "names": [f"s{i}.example", f"www.s{i}.example"],
                 "paths": [f"/api/v{j}" if j % 2 else f"/static/{j}" for j in range(20)]} for i in range(50)],
}


class _Log:
    def debug(self, msg: str, *args: object, **kwargs: object) -> None: ...
    def info(self, msg: str, *args: object, **kwargs: object) -> None: ...
    def warning(self, msg: str, *args: object, **kwargs: object) -> None: ...
    def error(self, msg: str, *args: object, **kwargs: object) -> None: ...


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    runs = parser.parse_args().runs
    template = _environment(None).from_string(TEMPLATE)
    ctx = RunContext("bench", time.monotonic() + 3600, 3600, threading.Event(), _Log(), Path("."))
    size = len(template.render(VALUES))
    bare, watched = [], []
    for _ in range(runs):
        started = time.perf_counter()
        template.render(VALUES)
        bare.append(time.perf_counter() - started)
        started = time.perf_counter()
        with _watched(ctx, "bench", {"<template>"}):
            template.render(VALUES)
        watched.append(time.perf_counter() - started)
    b, w = statistics.median(bare), statistics.median(watched)
    print(f"output {size / 1024:.0f} KB, {runs} runs: bare {b * 1000:.1f} ms, watched {w * 1000:.1f} ms, "
          f"ratio {w / b:.2f}x, cost {(w - b) * 1000:.1f} ms (target <= 50 ms)")


if __name__ == "__main__":
    main()
