"""Retake docs/assets/prefect-ui-run.png from a real run: a Prefect server on 127.0.0.1, ``prefect-init run
examples/tryout.yaml`` recorded into it, then headless Chromium on the flow run's page.

    .venv/bin/python docs/screenshot.py [OUT.png]

Needs Debian's ``chromium`` (``apt-get install chromium``). Nothing outside 127.0.0.1 is reached: Chromium runs
with its background networking off. The server and its database live in a temporary directory, removed after.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "assets" / "prefect-ui-run.png"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--window-size=1400,900"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"screenshot: the Prefect server at {url} did not come up in {seconds:.0f} s")


def _flow_run_id(url: str, name: str) -> str:
    body = json.dumps({"flow_runs": {"name": {"like_": name}}, "sort": "START_TIME_DESC", "limit": 1}).encode()
    request = urllib.request.Request(f"{url}/flow_runs/filter", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        runs = json.load(answer)
    if not runs:
        raise SystemExit("screenshot: the run was not recorded")
    return str(runs[0]["id"])


def main(argv: list[str]) -> int:
    out = Path(argv[0]).resolve() if argv else DEFAULT_OUT
    chromium = shutil.which("chromium")
    if chromium is None:
        print("screenshot: Debian's chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 2
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="prefect-init-screenshot-") as work:
        port = _free_port()
        api = f"http://127.0.0.1:{port}/api"
        env = {**os.environ, "PREFECT_HOME": work, "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
               "WHO": "you", "APP_VERSION": "1.4.2"}
        server = subprocess.Popen([str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1", "--port",
                                   str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_healthy(api)
            spec = Path(work) / "tryout.yaml"
            shutil.copy(ROOT / "examples" / "tryout.yaml", spec)  # its out/ goes to the temporary directory
            run = subprocess.run([str(bin_dir / "prefect-init"), "run", str(spec), "--require-api"], env=env,
                                 capture_output=True, text=True, timeout=300)
            if run.returncode != 0:
                print(run.stderr[-2000:], file=sys.stderr)
                return 1
            page = f"http://127.0.0.1:{port}/runs/flow-run/{_flow_run_id(api, 'tryout%')}"
            profile = Path(work) / "chromium"
            shot = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                   "--virtual-time-budget=15000", f"--screenshot={out}", page],
                                  capture_output=True, text=True, timeout=120)
            if shot.returncode != 0 or not out.exists():
                print(shot.stderr[-2000:], file=sys.stderr)
                return 1
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
    print(f"screenshot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
