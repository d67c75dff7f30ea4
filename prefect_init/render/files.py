"""``render --files LOCAL_DIR:PATH``: a local directory (migrations, templates, schemas) packed into a ConfigMap
that the prefect-init container mounts read-only at PATH; and the warning for every path a step reads that
nothing in the pod provides."""

from __future__ import annotations

import base64
import posixpath
import re
from pathlib import Path

from prefect_init.render.options import FilesMount, RenderOptions
from prefect_init.spec.model import Spec
from prefect_init.spec.writes import step_reads

CONFIGMAP_LIMIT = 1024 * 1024
"""A ConfigMap holds at most 1 MiB (Kubernetes refuses a larger one)."""
IMAGE_PATHS = ("/usr", "/etc", "/bin", "/lib", "/opt", "/var/run/secrets/kubernetes.io/serviceaccount")
"""Paths the init image (or, for the service account's token, Kubernetes) provides in every pod."""
_KEY = re.compile(r"[^-._a-zA-Z0-9]")


def read_files(argument: str) -> FilesMount:
    """``LOCAL_DIR:PATH`` -> the directory's regular files; ``ValueError`` (its one line) if it is not one,
    PATH is not absolute, or the files exceed a ConfigMap's 1 MiB."""
    local, sep, path = argument.rpartition(":")
    if not sep or not local or not posixpath.isabs(path):
        raise ValueError(f"render: --files {argument!r}: expected LOCAL_DIR:PATH, PATH absolute in the pod "
                         "(e.g. --files db/migrations:/migrations)")
    root = Path(local)
    if not root.is_dir():
        raise ValueError(f"render: --files {argument!r}: {local} is not a directory here")
    files = tuple((str(f.relative_to(root)), f.read_bytes()) for f in sorted(root.rglob("*")) if f.is_file())
    total = sum(len(name) + len(data) for name, data in files)
    if total > CONFIGMAP_LIMIT:
        raise ValueError(f"render: --files {argument!r}: {total / 1024 / 1024:.1f} MiB of files, and a ConfigMap "
                         "holds at most 1 MiB: build them into an image FROM the init image instead")
    return FilesMount(posixpath.normpath(path), files, local)


def key(name: str) -> str:
    """A ConfigMap key for a file's relative path (keys cannot hold ``/``; ``items`` restores the tree)."""
    return _KEY.sub("_", name.replace("/", "__"))


def data(mount: FilesMount) -> tuple[dict[str, str], dict[str, str]]:
    """(``data``, ``binaryData``): text as it is, anything that is not UTF-8 in base64."""
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    for name, content in mount.files:
        try:
            text[key(name)] = content.decode()
        except UnicodeDecodeError:
            binary[key(name)] = base64.b64encode(content).decode()
    return text, binary


def provided(path: str, spec_dirs: list[str], options: RenderOptions) -> bool:
    """Whether a pod path is on a volume a step writes, under a ``--files`` mount, or in the image."""
    places = [*spec_dirs, *(m.path for m in options.files), *IMAGE_PATHS]
    return any(path == place or path.startswith(place.rstrip("/") + "/") for place in places)


def read_warnings(spec: Spec, spec_dirs: list[str], options: RenderOptions) -> list[str]:
    """A warning per path a step reads that nothing provides (paths with a variable are not known here)."""
    out = []
    for step in (spec.data or {}).get("steps", []):
        for path, where in step_reads(step):
            if "${" in path:
                continue
            if not posixpath.isabs(path):
                out.append(f"step {step.get('name')}: {where} {path}: a relative path resolves under the spec's "
                           "read-only ConfigMap, which holds the spec alone; use an absolute path and --files")
            elif not provided(posixpath.normpath(path), spec_dirs, options):
                out.append(f"step {step.get('name')}: {where} {path}: no volume, no --files and nothing in the "
                           f"image provides it; add --files LOCAL_DIR:{path}, or build it into an image FROM the "
                           "init image")
    return out
