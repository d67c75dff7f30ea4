"""The images as users get them: ``deployments/Dockerfile`` built by podman (both targets), from a snapshot of the
sources, on the base ``tests/pods/setup.sh`` makes. The package index is reached with this machine's pip settings
and CA bundle, mounted read-only for the build only: nothing of them is in a layer."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = Path(os.environ.get("PREFECT_INIT_PODS_WORK", "/var/tmp/prefect-init-pods"))
BASE_IMAGE = "docker.io/library/python:3.11-slim-bookworm"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(HERE / "containers.conf")}


def podman(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["podman", *args], env=podman_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])}: exit {result.returncode}\n{result.stderr[-3000:]}")
    return result


@dataclass(frozen=True)
class Images:
    init: str
    worker: str


def build(context: Path, tag: str) -> Images:
    pip_conf = WORK / "pip-build.conf"
    assert pip_conf.exists(), "run tests/pods/setup.sh first (the README's test command does)"
    common = ["build", "--pull=never", "--network", "host", "-v", f"{CA_BUNDLE}:/run/host-ca.crt:ro",
              "-v", f"{pip_conf}:/etc/pip.conf:ro", "-f", str(context / "deployments" / "Dockerfile"),
              "--ignorefile", str(context / "deployments" / "Dockerfile.dockerignore")]
    images = Images(init=f"localhost/prefect-init:{tag}-init", worker=f"localhost/prefect-init:{tag}-worker")
    podman(*common, "--target", "init", "-t", images.init, str(context))
    podman(*common, "--target", "worker", "-t", images.worker, str(context))
    return images


def layers(image: str) -> list[tuple[int, str]]:
    """(size in bytes, created by) of each layer of ``image``, newest first."""
    history = json.loads(podman("history", "--format", "json", image).stdout)
    return [(int(entry.get("size", 0)), str(entry.get("CreatedBy") or entry.get("createdBy") or ""))
            for entry in history]


def build_app_image(init_image: str, context: Path, tag: str) -> str:
    """``examples/myapp/Dockerfile``: the init image with the example's npm (Debian's nodejs and npm, from the
    base image's apt sources: this machine's mirror, read when the base was made)."""
    podman("build", "--pull=never", "--network", "host", "-v", f"{CA_BUNDLE}:/run/host-ca.crt:ro",
           "--build-arg", f"INIT_IMAGE={init_image}", "-f", str(context / "Dockerfile"), "-t", tag, str(context))
    return tag


@contextmanager
def built_image(directory: Path, name: str) -> Iterator[str]:
    """An image of the tests' own (``tests/pods/<directory>/Containerfile``: Debian packages on the base image, no
    registry here), built with the host's CA for apt, removed afterwards."""
    tag = f"localhost/prefect-init-test-{name}:t{uuid.uuid4().hex[:6]}"
    podman("build", "--pull=never", "--network", "host", "-v", f"{CA_BUNDLE}:/run/host-ca.crt:ro", "-t", tag,
           str(directory))
    try:
        yield tag
    finally:
        podman("rmi", "-f", tag, check=False)
