"""The init and worker images built from ``deployments/Dockerfile`` by podman, and what ``render`` prints run by
``podman kube play``: a manifest counts when it runs, not when it validates."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import PrefectServer
from tests.helpers import run_cli, write_spec
from tests.pods.images import BASE_IMAGE, Images, layers, podman
from tests.pods.play import Adapt, play, remove_volumes
from tests.prefectserver import settled_task_runs

MB = 1_000_000


def own_layers(image: str) -> list[tuple[int, str]]:
    """The layers the Dockerfile added above the base image."""
    mine = layers(image)
    return mine[:len(mine) - len(layers(BASE_IMAGE))]


def test_the_init_image_is_lean_and_the_worker_has_prefect(images: Images) -> None:
    own = own_layers(images.init)
    total = sum(size for size, _ in own)
    pip = [size for size, created in own if "pip install" in created]
    assert len(pip) == 1, own
    # measured 2026-12-06: 91.9 MB of Debian packages (git, ssh), 95.4 MB of pip, of which 24.2 MB is squawk (the
    # migration linter's binary: the migrate step lints in the pod before it applies) — a few MB kept for growth
    assert total <= 192 * MB, [(round(size / MB, 1), created[:80]) for size, created in own]
    assert pip[0] <= 100 * MB, round(pip[0] / MB, 1)
    found = podman("run", "--rm", "--pull=never", "--entrypoint", "python", images.init, "-c",
                   "import importlib.util as u; print([m for m in ('prefect', 'prefect_kubernetes', 'sqlalchemy', "
                   "'asyncpg', 'kubernetes_asyncio', 'prefect_init', 'psycopg', 'hvac') if u.find_spec(m)])").stdout
    assert found.strip() == "['prefect_init', 'psycopg', 'hvac']"
    assert "Usage: prefect-init" in podman("run", "--rm", "--pull=never", images.init, "--help").stdout
    version = podman("run", "--rm", "--pull=never", "--entrypoint", "prefect", images.worker, "version").stdout
    assert "Version:" in version
    who = podman("run", "--rm", "--pull=never", "--entrypoint", "id", images.worker).stdout
    assert who.startswith("uid=10001"), who


def test_the_worker_image_runs_a_deployments_flow_run(images: Images, prefect_server: PrefectServer,
                                                      tmp_path: Path) -> None:
    """What a Kubernetes work pool's Job runs: ``prefect flow-run execute`` in the worker image, the spec's text
    the deployment's parameter; the flow run ends COMPLETED with its task runs."""
    text = "version: 1\nname: in-worker\nsteps:\n  - name: hello\n    command: [echo, from the worker image]\n"
    flow: Any = prefect_server.post("/flows/", {"name": "prefect-init"})
    deployment: Any = prefect_server.post("/deployments/", {
        "name": f"in-worker-{uuid.uuid4().hex[:6]}", "flow_id": flow["id"], "pull_steps": [],
        "entrypoint": "prefect_init.flows.spec_flow:run_spec", "parameters": {"spec_text": text}})
    run: Any = prefect_server.post(f"/deployments/{deployment['id']}/create_flow_run", {})
    result = podman("run", "--rm", "--pull=never", "--network", "host", "--entrypoint", "/usr/bin/env",
                    "-e", f"PREFECT_API_URL={prefect_server.api_url}", "-e", f"PREFECT__FLOW_RUN_ID={run['id']}",
                    images.worker, "prefect", "flow-run", "execute", timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    state = prefect_server.get(f"/flow_runs/{run['id']}")["state_type"]
    assert state == "COMPLETED", result.stderr[-3000:]
    tasks = settled_task_runs(prefect_server.api_url, [run["id"]], 1)
    assert [(t["name"], t["state_type"]) for t in tasks] == [("hello", "COMPLETED")]


def test_the_rendered_init_container_pod_runs(images: Images, tmp_path: Path) -> None:
    """``render init-container`` of a small spec, played as a pod: the init container exits 0, the app container
    (uid 10001, read-only root) sees the files it made, and the status file says succeeded."""
    name = f"pod{uuid.uuid4().hex[:6]}"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: {name}
        status_file: /status/result.json
        steps:
          - name: dirs
            files:
              dirs: [{{path: /data/uploads, mode: "0750"}}]
              files: [{{path: /data/uploads/ready, content: "made by the init container\\n"}}]
          - name: hello
            command: [sh, -c, "id -u > /data/uploads/uid"]
        """)
    rendered = run_cli("render", "init-container", str(spec), "--image", images.init, "--app-image", images.init)
    assert rendered.code == 0, rendered.stderr
    app = ["sh", "-c", "cat /data/uploads/ready /data/uploads/uid; python -c 'import json; "
           "print(\"STATUS\", json.dumps(json.load(open(\"/status/result.json\"))))'; echo APP-DONE"]
    played = play(rendered.stdout, Adapt(prefix=f"{name}-", app=app), tmp_path, until="APP-DONE")
    remove_volumes(f"{name}-")
    lines = played.lines
    assert "made by the init container" in lines and "10001" in lines, lines
    status = json.loads(next(line.removeprefix("STATUS ") for line in lines if line.startswith("STATUS ")))
    assert status["status"] == "succeeded" and [s["status"] for s in status["steps"]] == ["succeeded"] * 2


def test_setup_leaves_no_host_name_in_the_repository() -> None:
    """The Debian mirror and the package index are read at run time, never written into a tracked file."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=Path(__file__).resolve().parents[2],
                            capture_output=True, check=True).stdout.decode().split("\0")
    assert "tests/pods/setup.sh" in listed
    pip = subprocess.run(["pip", "config", "list"], capture_output=True, text=True).stdout
    hosts = {part.split("/")[2] for part in pip.replace("'", " ").split() if part.startswith(("http://", "https://"))}
    for name in filter(None, listed):
        path = Path(__file__).resolve().parents[2] / name
        if path.is_file() and path.suffix not in (".png",):
            text = path.read_text(errors="replace")
            assert not [host for host in hosts if host in text], name
