"""Workloads of both import corpora (tests/importer/import_corpus/ and import_world/), played by podman as they
are and after ``prefect-init import`` and ``render init-container --into``: the app starts in both, and sees the
same files, modes and owners. The harness changes the same things in both before either is played, each for a part this
machine lacks: the images (no registry: the corpus' busybox is Debian's busybox on the base image), the services
the waits reach (listeners on 127.0.0.1, on free ports, the pod on the host's network), and the app container
(a stand-in that prints what it sees on the init containers' volumes).

Every workload podman can run here is played: its initContainers need only busybox (or the init image), the
services they wait for can be listeners on 127.0.0.1, and every volume they mount can be a podman volume. The
others are listed in SKIPPED with the reason. The harbor database's ``chmod -R 700 DATA/pgdata || true`` (as the
database's uid 999) is played on a fresh volume and on a volume PostgreSQL initialised."""

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
from tests.pods.images import HERE, Images, built_image, podman
from tests.pods.play import Adapt, play, remove_volumes

IMPORTER = HERE.parent / "importer"
APP = ("for p in $(find {dirs} 2>/dev/null | sort); do stat -c 'SEEN %n %a %u:%g %F' \"$p\"; done; echo APP-DONE")

PLAYED = [  # (corpus, file, the services its waits reach, typed: the spec has typed steps only)
    ("import_corpus", "cronjob-args", ["minio:9000"], True),
    ("import_corpus", "wait-for-services", ["postgres:5432", "redis-master:6379"], True),
    ("import_corpus", "bitnami-postgresql", [], False),
    ("import_corpus", "bitnami-redis", [], True),
    ("import_world", "datasets-server-assets", [], True),
    ("import_world", "deckhouse-chown", [], True),
    ("import_world", "kaapana-postgres-keycloak", [], True),
    ("import_world", "keycloak-codecentric", ["kc-postgresql:5432"], False),
    ("import_world", "wordpress-conjur-check-db", ["demo-mysql-svc:3306", "demo-postgresql-svc:5432"], False),
    ("import_world", "harbor-database", [], False),
]
SKIPPED = {  # what podman cannot run here, and why
    "config-download, helm-template-output, http-wait": "HTTP answers from named hosts and curl, which busybox lacks",
    "elasticsearch, logic3579-sysctl, magda-elasticsearch": "a privileged sysctl would change this machine's kernel",
    "envfrom-app, migrations, temporal-schema, superset, velero-plugins, argo-cd-repo-server, linkerd-init":
        "containers only their own image can run (kept in their place)",
    "file-wait": "waits for files another pod writes",
    "featbit-wait": "its until-loops stay a command step that runs nc, which the init image lacks (import says so "
    "and prints a Dockerfile that adds it): played with the init image as it is, the step waits until its timeout",
    "git-clone-build, vault-secrets, mysql-wait, pg-isready, redis-wait, kafka, k8s-docs-myapp, homelab-nslookup, "
    "openrelik, elixier-kubectl-wait, mattermost-team-edition, argo-workflows-check-db": "a git remote, Vault, a "
    "database client, the Kubernetes API or cluster DNS that is not here",
    "ibm-datastage": "sleeps 30 s before each check, by design",
    "set-e-scripts, grafana, k8s-docs-mysql-replicated": "a ConfigMap or program from outside the stream (seed "
    "files, dashboards, xtrabackup)",
}



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


@pytest.fixture(scope="module")
def postgres_image(busybox: str) -> Iterator[str]:
    """Debian's postgresql on the base image, built after busybox (one build at a time)."""
    with built_image(HERE / "postgres", "postgres") as tag:
        yield tag


def _pod(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc.get("kind") == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc.get("spec", {}).get("template", {}).get("spec")


def _adapted(corpus: str, name: str, busybox: str, ports: list[int], services: list[str]) -> str:
    """The corpus workload with its services on 127.0.0.1 and this machine's images, the app a stand-in."""
    text = (IMPORTER / corpus / f"{name}.yaml").read_text()
    for service, port in zip(services, ports, strict=False):
        host, _, old = service.partition(":")
        for written in (f"{host} {old}", f'"{host}" {old}'):
            text = text.replace(written, f"127.0.0.1 {port}")
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        pod = _pod(doc)
        if not pod:
            continue
        # a volume the corpus file mounts but does not define (a chart's claim template, trimmed): a volume of the
        # test's own, in both plays (Kubernetes and podman refuse a mount of no volume)
        defined = {v["name"] for v in pod.get("volumes") or []} | {
            t["metadata"]["name"] for t in doc.get("spec", {}).get("volumeClaimTemplates") or []}
        for container in pod.get("initContainers", []) + pod["containers"]:
            for mount in container.get("volumeMounts") or []:
                if mount["name"] not in defined:
                    defined.add(mount["name"])
                    pod.setdefault("volumes", []).append({"name": mount["name"], "emptyDir": {}})
        mounts: dict[str, Any] = {}
        for container in pod.get("initContainers", []):
            container["image"] = busybox
            for mount in container.get("volumeMounts") or []:
                mounts[mount["mountPath"]] = {"name": mount["name"], "mountPath": mount["mountPath"]}
        for container in pod["containers"]:
            container["image"] = busybox
            container.pop("envFrom", None)  # the app's Secrets: not in the stream, and the stand-in needs none
            container["volumeMounts"] = list(mounts.values())
            container["command"] = ["sh", "-c", APP.format(dirs=" ".join(mounts) or "/nonexistent")]
            container.pop("args", None)
    return yaml.safe_dump_all(docs, sort_keys=False)


def _import_and_render(manifest: Path, tmp_path: Path, image: str) -> tuple[str, str]:
    """(the spec's text, the rendered stream) of import + render --into."""
    spec = tmp_path / "init.yaml"
    imported = run_cli("import", str(manifest), "-o", str(spec))
    assert imported.code == 0, imported.stderr
    rendered = run_cli("render", "init-container", str(spec), "--image", image, "--into", str(manifest))
    assert rendered.code == 0, rendered.stderr
    return spec.read_text(), rendered.stdout


def _prefect_init(stream: str) -> dict[str, Any]:
    for doc in yaml.safe_load_all(stream):
        pod = _pod(doc) if isinstance(doc, dict) else None
        for container in (pod or {}).get("initContainers") or []:
            if container["name"] == "prefect-init":
                return dict(container)
    raise AssertionError("no prefect-init container rendered")


def _seen(lines: list[str]) -> list[str]:
    return sorted(line for line in lines if line.startswith("SEEN "))


@pytest.mark.parametrize(("corpus", "name", "services", "typed"), PLAYED, ids=[p[1] for p in PLAYED])
def test_an_imported_corpus_workload_runs_as_the_original_did(
        images: Images, busybox: str, listeners: list[int], tmp_path: Path, corpus: str, name: str,
        services: list[str], typed: bool) -> None:
    manifest = tmp_path / f"{name}.yaml"
    manifest.write_text(_adapted(corpus, name, busybox, listeners, services))
    spec, rendered = _import_and_render(manifest, tmp_path, images.init)
    if typed:
        assert "command:" not in spec, spec  # typed steps only, none running the script
    prefix = f"c{uuid.uuid4().hex[:6]}-"
    try:
        original = play(manifest.read_text(), Adapt(prefix=prefix + "a-", host_network=True), tmp_path,
                        until="APP-DONE")
        replaced = play(rendered, Adapt(prefix=prefix + "b-", host_network=True), tmp_path, until="APP-DONE")
    finally:
        remove_volumes(prefix)
    for played in (original, replaced):
        assert "APP-DONE" in played.lines, played.lines[-30:]
    assert any("succeeded" in line for line in replaced.lines), replaced.lines[:40]  # prefect-init ran the spec
    seen = [_seen(played.lines) for played in (original, replaced)]
    assert seen[0] == seen[1]
    if name == "cronjob-args":
        assert seen[0] == ["SEEN /backup 755 1000:1000 directory"], seen  # chown -R: the owner, as before
    if name == "harbor-database":  # a fresh volume: chmod ... || true creates nothing
        assert not any("pgdata" in line for line in seen[1]), seen[1]
        assert _prefect_init(rendered)["securityContext"]["runAsUser"] == 999


def test_the_harbor_chmod_on_a_volume_postgresql_initialised(
        images: Images, busybox: str, postgres_image: str, tmp_path: Path) -> None:
    """The issue's case: ``chmod -R 700 DATA/pgdata || true`` as the pod's uid 999, on a volume that holds a
    database PostgreSQL initialised (with group access, 0750) and that belongs to 999: after the imported and
    rendered pod, pgdata and everything in it is 0700 and 999's, and the prefect-init container ran as 999, not
    10001 (as 10001 the chmod fails, the `|| true` hides it, and the modes stay 0750)."""
    manifest = tmp_path / "harbor-database.yaml"
    manifest.write_text(_adapted("import_world", "harbor-database", busybox, [], []))
    spec, rendered = _import_and_render(manifest, tmp_path, images.init)
    prefix = f"c{uuid.uuid4().hex[:6]}-"
    volume = prefix + "b-database-data"
    try:
        podman("volume", "create", volume)
        init = podman("run", "--rm", "--pull=never", "--user", "0", "-v", f"{volume}:/var/lib/postgresql/data",
                      postgres_image, "sh", "-ec",
                      "d=/var/lib/postgresql/data/pgdata; mkdir $d; chown postgres $d; "
                      "runuser -u postgres -- $(ls -d /usr/lib/postgresql/*/bin)/initdb --allow-group-access "
                      "-D $d >/dev/null; chown -R 999:999 $d; stat -c 'BEFORE %a %u:%g' $d", timeout=300)
        assert "BEFORE 750 999:999" in init.stdout, init.stdout + init.stderr  # the positive control
        replaced = play(rendered, Adapt(prefix=prefix + "b-", host_network=True), tmp_path, until="APP-DONE")
    finally:
        remove_volumes(prefix)
    assert "APP-DONE" in replaced.lines, replaced.lines[-30:]
    assert replaced.exit_codes.get("prefect-init", 0) == 0, replaced.exit_codes
    pgdata = [line for line in _seen(replaced.lines) if "/pgdata" in line]
    assert "SEEN /var/lib/postgresql/data/pgdata 700 999:999 directory" in pgdata, pgdata
    assert any("/pgdata/PG_VERSION " in line for line in pgdata), pgdata  # the database is there, whole
    assert all(line.split()[2:4] == ["700", "999:999"] for line in pgdata), pgdata
    context = _prefect_init(rendered)["securityContext"]  # the play above shows it; the manifest says it
    assert (context["runAsUser"], context.get("runAsNonRoot")) == (999, True), context
    # the typed form the issue asks of the importer (a files step, optional, that creates nothing) is the
    # importer's part (issue 32); until it lands, the script is kept as a command step, which does the same
    if "command:" in spec:
        pytest.xfail("import keeps `chmod -R 700 ... || true` as a command step (the outcome above holds); the "
                     "typed optional files step that creates nothing is not there yet")
    assert "optional: true" in spec, spec


def test_skipped_workloads_are_named() -> None:
    """Every corpus file is either played above or named in SKIPPED with its reason."""
    names = {p.stem for corpus in ("import_corpus", "import_world") for p in (IMPORTER / corpus).glob("*.yaml")
             if not p.name.endswith(".spec.yaml")}
    listed = {n.strip() for key in SKIPPED for n in key.split(",")} | {p[1] for p in PLAYED}
    assert names - listed == set(), names - listed
    assert len(names) >= 40  # both corpora, not nothing
