"""The images: size of the init and worker targets (each layer above the base), ``prefect-init --help`` and a
three-step run inside the init container (median wall time, peak memory of the run).

    python -m bench.bench_images          # needs tests/pods/setup.sh (the README's test command runs it)
"""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from pathlib import Path

from tests.helpers import source_snapshot
from tests.pods.images import BASE_IMAGE, build, layers, podman

MB = 1_000_000
RUNS = 7
SPEC = """version: 1
name: bench
steps:
  - name: dirs
    files: {dirs: [{path: /tmp/out/data, mode: "0750"}], files: [{path: /tmp/out/data/ready, content: "ok"}]}
  - name: hello
    command: [echo, hello]
  - name: tpl
    template: {inline: "x={{ x }}", dest: /tmp/out/x.conf, vars: {x: "1"}}
"""
PROBE = ("import json, resource, statistics, subprocess, sys, time\n"
         "def timed(args):\n"
         "    started = time.monotonic(); subprocess.run(args, check=True, capture_output=True)\n"
         "    return time.monotonic() - started\n"
         "helps = [timed(['prefect-init', '--help']) for _ in range(int(sys.argv[1]))]\n"
         "runs = [timed(['prefect-init', 'run', '/tmp/spec.yaml']) for _ in range(int(sys.argv[1]))]\n"
         "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
         "print(json.dumps({'help_s': statistics.median(helps), 'run_s': statistics.median(runs), 'peak_mb': peak}))\n")


def main() -> int:
    with tempfile.TemporaryDirectory() as directory:
        images = build(source_snapshot(Path(directory) / "context"), f"bench{uuid.uuid4().hex[:6]}")
        spec = Path(directory) / "spec.yaml"
        spec.write_text(SPEC)
        try:
            base = len(layers(BASE_IMAGE))
            for target, image in (("init", images.init), ("worker", images.worker)):
                own = layers(image)[:len(layers(image)) - base]
                print(f"{target}: {sum(s for s, _ in own) / MB:.1f} MB above the base")
                for size, created in own:
                    if size:
                        print(f"  {size / MB:8.1f} MB  {created.replace('/bin/sh -c ', '')[:90]}")
            result = podman("run", "--rm", "--pull=never", "--read-only", "--tmpfs", "/tmp", "-v",
                            f"{spec}:/tmp/spec.yaml:ro", "--entrypoint", "python", images.init, "-c", PROBE,
                            str(RUNS))
            figures = json.loads(result.stdout)
            print(f"in the init container, median of {RUNS}: prefect-init --help {figures['help_s']:.3f} s; "
                  f"a 3-step run {figures['run_s']:.3f} s, peak memory {figures['peak_mb']:.0f} MB")
        finally:
            podman("rmi", "-f", images.worker, images.init, check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
