"""``podman kube play`` of what ``render`` prints. The rendered YAML is adapted to podman 4.3 here, in the test
harness only, each change naming the podman limit (or the missing cluster part) it stands in for: what ``render``
prints is what Kubernetes gets."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.pods.images import podman


@dataclass
class Adapt:
    prefix: str
    """An emptyDir is a podman volume named after it, shared by every pod using the name: one per test."""
    app: list[str] | None = None
    """The app container's command: a stand-in that prints what the init container left it."""
    app_user: int | None = None
    host_network: bool = False
    """The services the pod reaches run on this machine's 127.0.0.1 (a cluster's Services, here)."""
    host_paths: dict[str, str] = field(default_factory=dict)
    """Pod path -> host path, mounted read-only into the prefect-init container: what a cluster would have
    provided (a projected service account token) or a remote the pod would reach (a git server)."""


def pods(stream: str, adapt: Adapt) -> list[dict[str, Any]]:
    """The stream with every workload turned into what podman plays, volumes renamed, ConfigMaps kept."""
    out: list[dict[str, Any]] = []
    for doc in (d for d in yaml.safe_load_all(stream) if d):
        kind = doc.get("kind")
        if kind == "ConfigMap":
            out.append(doc)
            continue
        if kind in ("StatefulSet", "DaemonSet"):
            # kube play plays Deployments and Pods: a StatefulSet's or DaemonSet's pod is played as a Deployment's,
            # its volumeClaimTemplates as volumes of the pod (below: no storage provisioner here)
            spec = doc["spec"]
            pod = spec["template"]["spec"]
            claims = [t["metadata"]["name"] for t in spec.get("volumeClaimTemplates") or []]
            pod["volumes"] = [*(pod.get("volumes") or []), *({"name": c, "emptyDir": {}} for c in claims)]
            doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": doc["metadata"]["name"]},
                   "spec": {"replicas": 1, "template": spec["template"]}}
            kind = "Deployment"
        if kind == "Deployment":
            pod = doc["spec"]["template"]["spec"]
        elif kind in ("Job", "CronJob"):
            # kube play ignores Jobs and CronJobs: play the pod of the template (what the Job controller starts)
            job = doc["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else doc["spec"]
            pod = job["template"]["spec"]
            doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": doc["metadata"]["name"]}, "spec": pod}
        else:
            continue
        # podman gives init containers the pod's restart policy: under a Deployment's Always, a finished init
        # container is started again, forever
        pod["restartPolicy"] = "Never"
        pod.pop("serviceAccountName", None)  # no API server: no service accounts
        if adapt.host_network:
            pod["hostNetwork"] = True
        containers = pod.get("initContainers", []) + pod["containers"]
        for container in containers:
            for entry in container.get("env", []):
                # no fieldRef to metadata.namespace or spec.nodeName in podman 4.3 (metadata.name works)
                path = entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
                if path in ("metadata.namespace", "spec.nodeName"):
                    entry.pop("valueFrom")
                    entry["value"] = "podman-namespace" if path == "metadata.namespace" else "podman-node"
        renamed = {}
        for volume in pod.get("volumes", []):
            if "persistentVolumeClaim" in volume:  # no storage provisioner: a volume of the test's own
                volume.pop("persistentVolumeClaim")
                volume["emptyDir"] = {}
            if "emptyDir" in volume:
                renamed[volume["name"]] = volume["name"] = adapt.prefix + volume["name"]
        for container in containers:
            for mount in container.get("volumeMounts", []):
                mount["name"] = renamed.get(mount["name"], mount["name"])
        init = (pod.get("initContainers") or pod["containers"])[0]
        for index, (inside, outside) in enumerate(adapt.host_paths.items()):
            pod["volumes"].append({"name": f"host-{index}", "hostPath": {"path": outside}})
            init["volumeMounts"].append({"name": f"host-{index}", "mountPath": inside, "readOnly": True})
        if kind == "Deployment":
            app = pod["containers"][0]
            if adapt.app:
                app["command"] = adapt.app
            if adapt.app_user is not None:  # the app's own image has its own user
                app["securityContext"]["runAsUser"] = app["securityContext"]["runAsGroup"] = adapt.app_user
        out.append(doc)
    return out


@dataclass
class Played:
    lines: list[str]
    exit_codes: dict[str, int]


def play(stream: str, adapt: Adapt, directory: Path, until: str | None = None, timeout: float = 240) -> Played:
    """Play the adapted stream, wait until every container has exited (or ``until`` is in the log), take the
    logs (podman's k8s-file format: ``TIME stdout|stderr F|P TEXT``) and each container's exit code, and take
    the pod down. Volumes are kept (a second play sees them: a pod restarted on the same node's emptyDirs)."""
    docs = pods(stream, adapt)
    manifest = directory / f"{adapt.prefix}play.yaml"
    manifest.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    log = directory / f"{adapt.prefix}{time.monotonic_ns()}.log"
    names = [f"{d['metadata']['name']}{'-pod' if d['kind'] == 'Deployment' else ''}"
             for d in docs if d["kind"] != "ConfigMap"]
    try:
        played = podman("kube", "play", "--log-opt", f"path={log}", str(manifest), timeout=300, check=False)
        assert played.returncode == 0, played.stderr[-3000:] + (log.read_text()[-4000:] if log.exists() else "")
        deadline = time.monotonic() + timeout
        while True:
            states = podman("ps", "-a", "--filter", f"pod={names[0]}", "--format", "{{.Names}} {{.State}}").stdout
            text = log.read_text() if log.exists() else ""
            if (until and until in text) or (states.strip() and all(
                    line.split()[1].lower() in ("exited", "stopped") for line in states.splitlines()
                    if not line.split()[0].endswith("-infra"))):
                break
            assert time.monotonic() < deadline, f"{states}\n{text[-3000:]}"
            time.sleep(0.5)
        codes = {}
        for line in podman("ps", "-a", "--filter", f"pod={names[0]}", "--format",
                           "{{.Names}} {{.ExitCode}}").stdout.splitlines():
            name, code = line.split()
            if not name.endswith("-infra"):
                codes[name.removeprefix(f"{names[0]}-")] = int(code)
    finally:
        podman("kube", "down", str(manifest), check=False)
    return Played(log_lines(log.read_text()), codes)


def log_lines(text: str) -> list[str]:
    """The lines of podman's k8s-file log (``TIME STREAM F|P TEXT``): a ``P`` entry is a part of a line that
    the next entries of its stream complete."""
    lines: list[str] = []
    partial: dict[str, str] = {}
    for entry in text.splitlines():
        parts = entry.split(" ", 3)
        if len(parts) < 3:
            continue
        stream, tag, body = parts[1], parts[2], parts[3] if len(parts) > 3 else ""
        if tag == "P":
            partial[stream] = partial.get(stream, "") + body
        else:
            lines.append(partial.pop(stream, "") + body)
    return lines


def remove_volumes(prefix: str) -> None:
    names = podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
    for name in names:
        if name.startswith(prefix):
            podman("volume", "rm", "-f", name, check=False)
