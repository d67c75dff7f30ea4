"""The provenance line of an imported spec: the contract between ``prefect-init import`` (which writes it) and
``render --into`` (which reads it back to know which initContainers the spec replaces).

It lives in ``render`` because ``render --into`` reads it and the importer sits above ``render`` (it writes
with ``render.dump`` and reads with ``render.stream``); ``render`` never imports the importer.
"""

from __future__ import annotations

import re

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
SHORT_KINDS = {"deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
               "sts": "StatefulSet", "statefulset": "StatefulSet", "statefulsets": "StatefulSet",
               "ds": "DaemonSet", "daemonset": "DaemonSet", "daemonsets": "DaemonSet",
               "rs": "ReplicaSet", "replicaset": "ReplicaSet", "replicasets": "ReplicaSet",
               "job": "Job", "jobs": "Job", "cj": "CronJob", "cronjob": "CronJob", "cronjobs": "CronJob",
               "po": "Pod", "pod": "Pod", "pods": "Pod"}
"""``--workload`` accepts the kind as written in the manifest, or as kubectl spells it (``deploy/web``)."""

PROVENANCE = "# imported by prefect-init import from {kind}/{name} (initContainers: {containers})"
"""The second line of an imported spec; ``render --into`` may parse it (:func:`parse_provenance`)."""
_PROVENANCE = re.compile(r"^\s*#\s*imported by prefect-init import from\s+(?P<kind>[A-Za-z]+)/(?P<name>[^\s(,]+)"
                         r"(?:\s*\(initContainers:\s*(?P<containers>[^)]*)\))?", re.IGNORECASE)
PROVENANCE_LINES = 30
"""How far from the top of a spec :func:`parse_provenance` looks for the provenance line."""


def parse_provenance(spec_text: str) -> tuple[str, str, list[str]] | None:
    """(kind, name, initContainers) from a spec's :data:`PROVENANCE` line (in its first
    :data:`PROVENANCE_LINES` lines; as written by hand too: spaces, any case, no ``(initContainers: ...)``, which
    gives an empty list), or None when it has none."""
    for line in spec_text.splitlines()[:PROVENANCE_LINES]:
        match = _PROVENANCE.match(line)
        if match:
            containers = match["containers"] or ""
            return match["kind"], match["name"], [c.strip() for c in containers.split(",") if c.strip()]
    return None


def own_prefix(container_name: str) -> str:
    """The prefix of a variable that two initContainers define differently: the later container's steps read
    ``CONTAINER_NAME`` (its own value), not ``NAME`` (the first one's); ``render --into`` gives the prefect-init
    container that container's entry under the prefixed name. The importer writes it, render reads it."""
    return re.sub(r"[^A-Z0-9]+", "_", container_name.upper()).strip("_") or "INIT"
