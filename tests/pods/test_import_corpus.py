"""Workloads of the import corpus (tests/importer/import_corpus/), played by podman as they are and after
``prefect-init import`` and ``render init-container --into``: the app starts in both, and sees the same files,
modes and owners. The harness changes the same things in both before either is played, each for a part this
machine lacks: the images (no registry: the corpus' busybox is Debian's busybox on the base image), the services
the waits reach (listeners on 127.0.0.1, on free ports, the pod on the host's network), and the app container
(a stand-in that prints what it sees on the init containers' volumes)."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import run_cli
from tests.pods.images import HERE, Images, built_image
from tests.pods.play import Adapt, play, remove_volumes

CORPUS = HERE.parent / "importer" / "import_corpus"
APP = ("for p in $(find {dirs} 2>/dev/null | sort); do stat -c 'SEEN %n %a %u:%g %F' \"$p\"; done; echo APP-DONE")


@pytest.fixture(scope="module")
def busybox(images: Images) -> Iterator[str]:
    """Debian's busybox on the base image, built after the prefect-init images (one build at a time)."""
    with built_image(HERE / "busybox", "busybox") as tag:
        yield tag


@pytest.fixture
def listeners() -> Iterator[list[int]]:
    """Three TCP ports on 127.0.0.1 that accept connections: the services the corpus' waits reach."""
    servers = []
    for _ in range(3):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        servers.append(server)

    def accept(server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    for server in servers:
        threading.Thread(target=accept, args=(server,), daemon=True).start()
    try:
        yield [s.getsockname()[1] for s in servers]
    finally:
        for server in servers:
            server.close()


def _adapted(name: str, busybox: str, ports: list[int], services: list[str]) -> str:
    """The corpus workload with its services on 127.0.0.1 and this machine's images, the app a stand-in."""
    text = (CORPUS / f"{name}.yaml").read_text()
    for service, port in zip(services, ports, strict=False):
        host, _, old = service.partition(":")
        text = text.replace(f"{host} {old}", f"127.0.0.1 {port}")
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        pod = (doc["spec"]["jobTemplate"]["spec"]["template"]["spec"] if doc.get("kind") == "CronJob"
               else doc.get("spec", {}).get("template", {}).get("spec"))
        if not pod:
            continue
        mounts: dict[str, Any] = {}
        for container in pod.get("initContainers", []):
            container["image"] = busybox
            for mount in container.get("volumeMounts") or []:
                mounts[mount["mountPath"]] = {"name": mount["name"], "mountPath": mount["mountPath"]}
        for container in pod["containers"]:
            container["image"] = busybox
            container["volumeMounts"] = list(mounts.values())
            container["command"] = ["sh", "-c", APP.format(dirs=" ".join(mounts) or "/nonexistent")]
    return yaml.safe_dump_all(docs, sort_keys=False)


@pytest.mark.parametrize(("name", "services"), [
    ("cronjob-args", ["minio:9000"]),
    ("wait-for-services", ["postgres:5432", "redis-master:6379"]),
])
def test_an_imported_corpus_workload_runs_as_the_original_did(
        images: Images, busybox: str, listeners: list[int], tmp_path: Path, name: str, services: list[str]) -> None:
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(_adapted(name, busybox, listeners, services))
    spec = tmp_path / "init.yaml"
    imported = run_cli("import", str(manifest), "-o", str(spec))
    assert imported.code == 0, imported.stderr
    assert "command:" not in spec.read_text(), spec.read_text()  # typed steps only, none running the script
    rendered = run_cli("render", "init-container", str(spec), "--image", images.init, "--into", str(manifest))
    assert rendered.code == 0, rendered.stderr
    prefix = f"c{uuid.uuid4().hex[:6]}-"
    try:
        original = play(manifest.read_text(), Adapt(prefix=prefix + "a-", host_network=True), tmp_path,
                        until="APP-DONE")
        replaced = play(rendered.stdout, Adapt(prefix=prefix + "b-", host_network=True), tmp_path, until="APP-DONE")
    finally:
        remove_volumes(prefix)
    for played in (original, replaced):
        assert "APP-DONE" in played.lines, played.lines[-30:]
    assert any("succeeded" in line for line in replaced.lines), replaced.lines[:40]  # prefect-init ran the spec
    seen = [sorted(line for line in played.lines if line.startswith("SEEN ")) for played in (original, replaced)]
    assert seen[0] == seen[1]
    if name == "cronjob-args":
        assert seen[0] == ["SEEN /backup 755 1000:1000 directory"], seen  # chown -R: the owner, as before
