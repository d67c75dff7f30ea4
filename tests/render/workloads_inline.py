"""Small workloads of every kind, written here, for ``render --into``, ``kustomize`` and their comparisons."""

from __future__ import annotations

import copy
import textwrap
from typing import Any

from prefect_init.render.into import ANNOTATION, pod_template

SPEC = """\
# imported by prefect-init import from {kind}/web (initContainers: perms, config)
version: 1
name: web
steps:
  - name: perms
    files:
      dirs:
        - {{path: /data/uploads, mode: "0770", owner: "1000:1000"}}
  - name: config
    files:
      files:
        - {{path: /etc/web/app.conf, content: "mode: ${{APP_ENV}}\\n"}}
  - name: cache
    files:
      dirs:
        - {{path: /cache/web, mode: "0755"}}
"""
"""What ``prefect-init import`` would make of :data:`POD`'s initContainers (written by hand here): the paths the
originals wrote, ``${APP_ENV}`` from their env, and one directory (``/cache``) no container mounts."""

SPEC_PLAIN = "\n".join(SPEC.format(kind="Deployment").splitlines()[1:]) + "\n"
"""The same spec without its provenance line."""

POD = """\
initContainers:
  - name: perms
    image: busybox:1.36
    command: [sh, -c, "mkdir -p /data/uploads && chmod 770 /data/uploads && chown -R 1000:1000 /data"]
    volumeMounts:
      - {name: data, mountPath: /data}
  - name: config
    image: busybox:1.36
    command: [sh, -c, "echo mode: $APP_ENV > /etc/web/app.conf"]
    env:
      - {name: APP_ENV, value: production}
      - {name: POD_NAME, value: shadowed}
      - name: DB_PASSWORD
        valueFrom: {secretKeyRef: {name: web-db, key: password}}
    envFrom:
      - secretRef: {name: web-env}
    volumeMounts:
      - {name: conf, mountPath: /etc/web}
containers:
  - name: app
    image: nginx:1.27
    ports: [{containerPort: 80}]
    env: [{name: APP_ENV, value: production}]
    volumeMounts:
      - {name: data, mountPath: /var/lib/web}
      - {name: conf, mountPath: /etc/web, readOnly: true}
  - name: shipper
    image: fluent-bit:3
    volumeMounts:
      - {name: data, mountPath: /var/lib/web, readOnly: true}
volumes:
  - {name: data, emptyDir: {}}
  - {name: conf, emptyDir: {}}
"""


def _indent(text: str, spaces: int) -> str:
    return textwrap.indent(text, " " * spaces)


def workload(kind: str, pod: str = POD) -> str:
    """A manifest file: a Service (with comments, to be kept as written) and a ``kind``/web with :data:`POD`."""
    service = """\
# the web service: kept as written, comments and all
apiVersion: v1
kind: Service
metadata:
  name: web   # inline comment
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""
    labels = "metadata:\n  labels: {app: web}\n  annotations: {team: web}\n"
    if kind == "Pod":
        body = (f"apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {{app: web}}\n"
                f"  annotations: {{team: web}}\nspec:\n{_indent(pod, 2)}")
    elif kind == "CronJob":
        body = ("apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: web\nspec:\n  schedule: '0 3 * * *'\n"
                "  jobTemplate:\n    spec:\n      backoffLimit: 1\n      template:\n"
                f"{_indent(labels, 8)}        spec:\n          restartPolicy: OnFailure\n{_indent(pod, 10)}")
    elif kind == "Job":
        body = ("apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: web\nspec:\n  template:\n"
                f"{_indent(labels, 4)}    spec:\n      restartPolicy: Never\n{_indent(pod, 6)}")
    else:
        extra = {"Deployment": "  replicas: 2\n  strategy: {type: RollingUpdate}\n",
                 "StatefulSet": "  serviceName: web\n  replicas: 1\n",
                 "DaemonSet": "  updateStrategy: {type: RollingUpdate}\n"}[kind]
        claims = ("  volumeClaimTemplates:\n    - metadata: {name: state}\n      spec:\n        accessModes: "
                  "[ReadWriteOnce]\n        resources: {requests: {storage: 1Gi}}\n") if kind == "StatefulSet" else ""
        body = (f"apiVersion: apps/v1\nkind: {kind}\nmetadata:\n  name: web\n  namespace: shop\nspec:\n{extra}"
                f"  selector:\n    matchLabels: {{app: web}}\n{claims}  template:\n{_indent(labels, 4)}    spec:\n"
                f"{_indent(pod, 6)}")
    return service + "---\n" + body


KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod")


def pod_of(doc: dict[str, Any]) -> dict[str, Any]:
    found = pod_template(doc)
    assert found is not None
    return found[1]


def without_changes(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` less what render --into may change: the pod's initContainers and volumes, the containers'
    mounts, the spec's annotation (and an annotations mapping left empty)."""
    doc = copy.deepcopy(doc)
    found = pod_template(doc)
    assert found is not None
    meta, pod = found
    annotations = meta.get("annotations") or {}
    annotations.pop(ANNOTATION, None)
    if not annotations:
        meta.pop("annotations", None)
    if not meta:
        _drop_empty_metadata(doc)
    pod.pop("initContainers", None)
    pod.pop("volumes", None)
    for container in pod.get("containers") or []:
        container.pop("volumeMounts", None)
    return doc


def _drop_empty_metadata(doc: dict[str, Any]) -> None:
    for holder in (doc.get("spec", {}), doc.get("spec", {}).get("jobTemplate", {}).get("spec", {})):
        template = holder.get("template") if isinstance(holder, dict) else None
        if isinstance(template, dict) and template.get("metadata") == {}:
            template.pop("metadata")


def normalized(value: Any) -> Any:
    """Lists of named things (containers, volumes, mounts, env) in a fixed order: order does not matter to a
    comparison up to order."""
    if isinstance(value, dict):
        return {k: normalized(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [normalized(v) for v in value]
        if items and all(isinstance(i, dict) and ("name" in i or "mountPath" in i) for i in items):
            return sorted(items, key=lambda i: (str(i.get("name")), str(i.get("mountPath"))))
        return items
    return value
