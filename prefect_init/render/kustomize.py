"""``render kustomize SPEC --into WORKLOAD.yaml -o DIR``: a kustomization that makes of the user's own file what
``render init-container --into`` prints, for ``kubectl apply -k DIR``.

DIR gets ``kustomization.yaml`` (the workload file as a resource, a ``configMapGenerator`` for the spec), a
strategic-merge patch (``prefect-init-patch.yaml``: the prefect-init container, the replaced initContainers as
``$patch: delete`` entries, the volumes, the app containers' mounts, the spec's checksum annotation) and, when the
spec is not already in DIR, a copy of it. The changes are :func:`prefect_init.render.into.compute`'s, so both
forms give the same manifests.

The ConfigMap's name has no hash suffix (``generatorOptions: disableNameSuffixHash: true``): it is the name
``render`` gives it everywhere else, and the pod template's ``prefect-init/spec-sha256`` annotation already rolls
the workload when the spec changes (a hash suffix would too, but would name the ConfigMap differently from every
other form and leave the old ones behind in the cluster).

kustomize reads only files in or below the kustomization's directory, so DIR must hold the workload file (be its
directory or above it)."""

from __future__ import annotations

import contextlib
import copy
import os
from dataclasses import dataclass
from pathlib import Path

from prefect_init.render.into import (
    Changes,
    IntoError,
    parse_stream,
    pod_template,
    provenance,
    ref,
    select,
    template_path,
)
from prefect_init.render.into import (
    compute as compute_changes,
)
from prefect_init.render.options import RenderOptions
from prefect_init.render.pod import CONTAINER, SPEC_KEY, Doc, labels
from prefect_init.runtime.atomic import AtomicFile
from prefect_init.spec.model import Spec

KUSTOMIZATION = "kustomization.yaml"
PATCH = "prefect-init-patch.yaml"
FILES = "prefect-init-files.yaml"
MARKER = "# Written by prefect-init render kustomize: render again rather than edit it."
_OTHER_NAMES = ("kustomization.yml", "Kustomization")


@dataclass
class Kustomization:
    files: dict[str, str]
    """File name in DIR -> its text."""
    warnings: list[str]
    changes: Changes


def _relative(path: Path, directory: Path) -> str | None:
    try:
        return path.resolve().relative_to(directory.resolve()).as_posix()
    except ValueError:
        return None


def patch(doc: Doc, changes: Changes) -> Doc:
    """The strategic-merge patch of ``doc``. kustomize puts a list's elements named in a patch first, in the
    patch's order: naming the initContainers that stay ahead keeps the prefect-init container where ``--into``
    puts it."""
    meta = doc.get("metadata") or {}
    target: Doc = {"name": meta.get("name")}
    if meta.get("namespace"):
        target["namespace"] = meta["namespace"]
    annotation = changes.annotation
    pod: Doc = {"initContainers": [*({"name": n} for n in changes.kept_before),
                                   *({"name": n, "$patch": "delete"} for n in changes.removed), changes.container]}
    if changes.app_mounts:
        pod["containers"] = [{"name": name, "volumeMounts": mounts} for name, mounts in changes.app_mounts.items()]
    if changes.volumes:
        pod["volumes"] = changes.volumes
    template: Doc = {"metadata": {"annotations": annotation}, "spec": pod}
    path = template_path(str(doc.get("kind")))
    if not path:
        return {"apiVersion": doc.get("apiVersion"), "kind": doc.get("kind"),
                "metadata": {**target, "annotations": annotation}, "spec": pod}
    body: Doc = template
    for key in reversed(path):
        body = {key: body}
    return {"apiVersion": doc.get("apiVersion"), "kind": doc.get("kind"), "metadata": target, **body}


def build(spec: Spec, options: RenderOptions, spec_path: str, workload_path: Path, directory: Path,
          workload: str | None = None, keep_init: bool = False) -> Kustomization:
    """The files of the kustomization (nothing written yet); :class:`IntoError` for a problem, in one line."""
    from prefect_init.render import to_yaml

    if not directory.is_dir():
        raise IntoError(f"-o {directory}: no such directory (it must hold {workload_path}, the workload file)")
    resource = _relative(workload_path, directory)
    if resource is None:
        raise IntoError(f"-o {directory}: kustomize reads only files in or below the kustomization's directory, "
                        f"and {workload_path} is not: use its directory (-o {workload_path.parent}) or one above it")
    for name in _OTHER_NAMES:
        if (directory / name).exists():
            raise IntoError(f"-o {directory}: {directory / name} is there: a second kustomization file in the same "
                            "directory is an error to kustomize; choose another directory")
    existing = directory / KUSTOMIZATION
    ours = existing.exists() and existing.read_text(errors="replace").startswith(MARKER)
    if existing.exists() and not ours:
        raise IntoError(f"-o {directory}: {existing} is there and was not written by prefect-init: it is not "
                        "replaced; choose another directory")
    try:
        text = workload_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IntoError(f"--into {workload_path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    parts = parse_stream(text, str(workload_path))
    origin = provenance(spec.text)
    index = select(parts, str(workload_path), workload, origin)
    doc = parts[index].data
    found = pod_template(copy.deepcopy(doc))
    assert found is not None
    if CONTAINER in [c.get("name") for c in found[1].get("initContainers") or [] if isinstance(c, dict)]:
        raise IntoError(f"{workload_path}: {ref(doc)} has a {CONTAINER} initContainer already (an earlier render "
                        "--into?): the kustomization adds it itself; point --into at the file without it")
    changes = compute_changes(spec, options, doc, keep_init, origin.containers if origin else None)
    files: dict[str, str] = {}
    in_place = _relative(Path(spec_path), directory) if spec_path != "-" else None
    if in_place is None:
        copy_name = Path(spec_path).name if spec_path != "-" else "init.yaml"
        if copy_name in (KUSTOMIZATION, PATCH, FILES, resource):
            copy_name = "init.yaml" if copy_name != "init.yaml" else "prefect-init-spec.yaml"
        target = directory / copy_name
        earlier = _earlier_copy(existing) if ours else None
        if target.exists() and earlier != copy_name and target.read_text(errors="replace") != spec.text:
            raise IntoError(f"-o {directory}: {target} is there and is not this spec: it is not replaced; choose "
                            "another directory")
        files[copy_name] = spec.text
        in_place = copy_name
    config_map, *files_maps = changes.config_maps
    generator: Doc = {"name": config_map["metadata"]["name"]}
    if config_map["metadata"].get("namespace"):
        generator["namespace"] = config_map["metadata"]["namespace"]
    generator["files"] = [f"{SPEC_KEY}={in_place}"]
    generator["options"] = {"labels": labels(spec, "init-spec")}
    kustomization: Doc = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                          "resources": [resource, *([FILES] if files_maps else [])],
                          "configMapGenerator": [generator],
                          "generatorOptions": {"disableNameSuffixHash": True},
                          "patches": [{"path": PATCH}]}
    files[PATCH] = to_yaml([patch(doc, changes)])
    if files_maps:
        files[FILES] = to_yaml(files_maps)
    files[KUSTOMIZATION] = MARKER + "\n" + to_yaml([kustomization]).removeprefix("---\n")
    for name in files:
        if (directory / name).is_dir():
            raise IntoError(f"-o {directory}: {directory / name} is a directory: it is not replaced")
    return Kustomization(files, changes.warnings, changes)


def _earlier_copy(kustomization: Path) -> str | None:
    """The spec's copy that an earlier ``render kustomize`` wrote in DIR (its configMapGenerator's file): the only
    file of that name it may replace; any other is the user's."""
    import yaml

    try:
        data = yaml.safe_load(kustomization.read_text(errors="replace"))
        entry = str(data["configMapGenerator"][0]["files"][0])
    except (yaml.YAMLError, KeyError, IndexError, TypeError):
        return None
    return entry.partition("=")[2] or None


def write(directory: Path, files: dict[str, str]) -> None:
    """Every file or none: each is written and synced to a temporary file beside its target first, and only
    when all are written are they renamed into place; a failure before that leaves DIR as it was (the temporary files
    removed). :class:`~prefect_init.errors.StepFailed` names the file and the cause."""
    with contextlib.ExitStack() as stack:
        pending = []
        for name, text in files.items():
            atomic = stack.enter_context(AtomicFile(directory / name, 0o644))
            atomic.handle.write(text.encode())
            pending.append(atomic)
        for atomic in pending:
            atomic.handle.flush()
            os.fsync(atomic.handle.fileno())
        for atomic in pending:
            atomic.commit()
