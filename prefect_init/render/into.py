"""``render init-container --into WORKLOAD.yaml``: the user's own manifests with the prefect-init container in
place of the initContainers a spec was imported from.

The changes are computed once, as :class:`Changes` (what to remove, add and mount), and either applied to the
user's document here or written as a strategic-merge patch by :mod:`prefect_init.render.kustomize`; both print
the same manifests.

Volumes: a spec writes where the initContainers it replaces wrote, usually on the user's own volumes. So the
prefect-init container takes over the replaced containers' mounts, and a directory the spec writes that one of
the pod's containers already mounts (at that path or above it) is written through that same mount: the app sees
what the init container wrote on its own volume, and nothing new is mounted over it. Only a directory no
container mounts gets a new emptyDir, shared with the app containers when a step writes there.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import operator
import posixpath
import re
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from prefect_init.render.options import RenderOptions
from prefect_init.render.pod import (
    CONTAINER,
    OWNER_CAPABILITIES,
    UID,
    Doc,
    config_map,
    container_security_context,
    files_config_maps,
    init_container,
    owner_steps,
    privilege_note,
    volume_dirs,
    volume_mounts,
    volume_name,
    volumes,
)
from prefect_init.render.provenance import SHORT_KINDS, own_prefix
from prefect_init.render.roundtrip import changed_document
from prefect_init.spec.interpolate import referenced_variables
from prefect_init.spec.model import Spec
from prefect_init.spec.writes import step_writes

ANNOTATION = "prefect-init/spec-sha256"
"""On the pod template: the spec's sha256. The spec lives in a ConfigMap, whose change alone restarts no pod; a
changed annotation rolls the workload."""

READ_ONLY_VOLUMES = ("configMap", "secret", "downwardAPI", "projected")
"""Volume sources a container can never write to."""

class IntoError(ValueError):
    """A problem with the workload file or the workload asked for: one line, for a person."""


@dataclass(frozen=True)
class Provenance:
    """The spec's line ``# imported by prefect-init import from KIND/NAME (initContainers: a, b)``."""

    kind: str
    name: str
    containers: tuple[str, ...] | None


def provenance(text: str) -> Provenance | None:
    """The spec's provenance line, as ``prefect-init import`` writes it (the importer's one reader of it)."""
    from prefect_init.render.provenance import parse_provenance

    found = parse_provenance(text)
    if found is None:
        return None
    kind, name, containers = found
    return Provenance(kind, name, tuple(containers) or None)


@dataclass
class Part:
    """One document of the user's stream: its text as written (with the comments before it) and its data."""

    raw: str
    data: Any


def parse_stream(text: str, where: str) -> list[Part]:
    """The documents of a YAML stream, each with its own text, so the untouched ones are printed as written."""
    from prefect_init.render.stream import StreamProblem, load_all

    try:
        data = load_all(text, where)
        ends = [e.end_mark.index if e.end_mark else len(text) for e in yaml.parse(text, Loader=yaml.SafeLoader)
                if isinstance(e, yaml.DocumentEndEvent)]
    except StreamProblem as exc:
        raise IntoError(str(exc)) from None
    parts, start = [], 0
    for number, (end, doc) in enumerate(zip(ends, data, strict=True)):
        stop = len(text) if number == len(ends) - 1 else end
        parts.append(Part(text[start:stop], doc))
        start = stop
    return parts


def _significant(raw: str) -> str:
    """The first line of ``raw`` that is not blank or a comment."""
    return next((line for line in raw.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")


def _leading_comments(raw: str) -> str:
    lines = []
    for line in raw.splitlines():
        if line.strip() == "---" or line.startswith("--- "):  # the document's start: its comments may follow
            continue
        if line.strip() and not line.lstrip().startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines).strip("\n")


def print_part(part: Part) -> str:
    """A document as written, starting with its own ``---``."""
    raw = part.raw.strip("\n")
    if not raw:
        return ""
    first = _significant(raw)
    if first == "---" or first.startswith("--- ") or first.startswith("%"):
        return raw + "\n"
    return "---\n" + raw + "\n"


def pod_template(doc: Any) -> tuple[Doc, Doc] | None:
    """(the pod's metadata, the pod's spec) of a workload document, or None when it has no pod template."""
    if not isinstance(doc, dict) or not isinstance(doc.get("spec"), dict):
        return None
    spec = doc["spec"]
    if doc.get("kind") == "Pod":
        return (doc.setdefault("metadata", {}), spec) if isinstance(spec.get("containers"), list) else None
    if doc.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec")
        if not isinstance(spec, dict):
            return None
    template = spec.get("template")
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict):
        return None
    if not isinstance(template.get("metadata"), dict):
        template["metadata"] = {}
    return template["metadata"], template["spec"]


def template_path(kind: str) -> list[str]:
    """The keys from a workload document to its pod template (``[]``: the document is the pod)."""
    if kind == "Pod":
        return []
    if kind == "CronJob":
        return ["spec", "jobTemplate", "spec", "template"]
    return ["spec", "template"]


def ref(doc: Any) -> str:
    if not isinstance(doc, dict):
        return "(not a mapping)"
    return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"


def parse_workload(value: str) -> tuple[str, str]:
    """``KIND/NAME`` (the kind as kubectl spells it, any case) -> (kind, name)."""
    kind, sep, name = value.partition("/")
    if not sep or not kind or not name or "/" in name:
        raise IntoError(f"--workload {value!r}: expected KIND/NAME, KIND a Deployment, StatefulSet, DaemonSet, "
                        "ReplicaSet, Job, CronJob or Pod (e.g. --workload deployment/web)")
    return SHORT_KINDS.get(kind.lower(), kind), name


def select(parts: list[Part], where: str, workload: str | None, origin: Provenance | None) -> int:
    """The index of the workload to change: ``--workload``, else the spec's provenance line, else the only one."""
    workloads = [i for i, p in enumerate(parts) if pod_template(copy.deepcopy(p.data)) is not None]
    listing = ", ".join(ref(parts[i].data) for i in workloads) or "none"
    if workload is None and origin is not None:
        workload = f"{origin.kind}/{origin.name}"
        said = f"the spec's provenance line names {workload}"
    else:
        said = f"--workload {workload}"
    if workload is None:
        if len(workloads) == 1:
            return workloads[0]
        if not workloads:
            raise IntoError(f"{where}: no workload with a pod template in it (a Deployment, StatefulSet, DaemonSet, "
                            "Job, CronJob or Pod)")
        raise IntoError(f"{where}: {len(workloads)} workloads ({listing}): say which with --workload KIND/NAME")
    kind, name = parse_workload(workload)
    for index, part in enumerate(parts):
        if isinstance(part.data, dict) and str(part.data.get("kind")).lower() == kind.lower() and \
                (part.data.get("metadata") or {}).get("name") == name:
            if index not in workloads:
                raise IntoError(f"{where}: {ref(part.data)} has no pod template (spec.template.spec) to put an init "
                                f"container in (workloads: {listing})")
            return index
    raise IntoError(f"{where}: no {kind}/{name} in it ({said}; workloads: {listing})")


@dataclass
class Changes:
    """What one workload's pod gets and loses."""

    container: Doc
    """The prefect-init container, whole."""
    kept_before: list[str]
    """initContainers that stay ahead of it."""
    removed: list[str]
    """initContainers it replaces."""
    app_mounts: dict[str, list[Doc]]
    """Per app container, the mounts it gets."""
    volumes: list[Doc]
    """The pod's new volumes."""
    annotation: dict[str, str]
    config_maps: list[Doc]
    """The spec's ConfigMap, then ``--files``' ones."""
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What render says on stderr about the container's privileges (who it runs as, the Pod Security level)."""


def spec_sha256(spec: Spec) -> str:
    return hashlib.sha256(spec.text.encode()).hexdigest()


def under(path: str, directory: str) -> bool:
    """``path`` is ``directory`` or inside it."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def app_dirs(spec: Spec, mounts: list[str]) -> set[str]:
    """The spec's volume directories that a step writes into (the app reads them); the others (the status
    file's, ``/secrets`` with no secret in it) are the init container's alone."""
    written = [posixpath.normpath(p) for step in (spec.data or {}).get("steps", [])
               for p, _ in step_writes(step) if posixpath.isabs(p)]
    if spec.status_file and posixpath.isabs(spec.status_file):
        written.append(posixpath.normpath(spec.status_file))
    return {d for d in mounts if any(under(p, d) for p in written)}


def compute(spec: Spec, options: RenderOptions, doc: Doc, keep_init: bool = False,
            only: tuple[str, ...] | None = None) -> Changes:
    """The changes that put the spec's prefect-init container into ``doc``'s pod (``doc`` is not changed).

    ``only``: the initContainers to replace (the spec's provenance line), else every one that is not a sidecar
    (``restartPolicy: Always``); with ``keep_init``, none (the prefect-init container goes first). A
    prefect-init container already there (an earlier render) is always replaced."""
    doc = copy.deepcopy(doc)
    found = pod_template(doc)
    assert found is not None
    _, pod = found
    where = ref(doc)
    check_pod(pod, where)
    inits: list[Doc] = [c for c in pod.get("initContainers") or [] if isinstance(c, dict)]
    apps: list[Doc] = [c for c in pod.get("containers") or [] if isinstance(c, dict)]
    names = [str(c.get("name")) for c in inits]
    if CONTAINER in {str(c.get("name")) for c in apps}:
        raise IntoError(f"{where}: an app container is named {CONTAINER}, the name of the init container it would "
                        "get: rename it")
    if only is not None:
        missing = [n for n in only if n not in names]
        if missing and CONTAINER not in names:  # with one there, an earlier render replaced them
            raise IntoError(f"{where} has no initContainer {', '.join(missing)} (the spec was imported from "
                            f"initContainers {', '.join(only)}; it has: {', '.join(names) or 'none'})")
        sources = [c for c in inits if c.get("name") in only or c.get("name") == CONTAINER]
    else:
        sources = [c for c in inits if c.get("restartPolicy") != "Always" or c.get("name") == CONTAINER]
    removed = [n for n in names if n == CONTAINER] if keep_init else [str(c.get("name")) for c in sources]
    if keep_init:
        kept_before: list[str] = []
    elif removed:
        kept_before = [n for n in names[:names.index(removed[0])] if n not in removed]
    else:  # nothing to replace (none, or sidecars only): after them
        kept_before = list(names)

    options = replace(options, namespace=(doc.get("metadata") or {}).get("namespace"))
    container = init_container(spec, options)
    ours = {v["name"]: v for v in volumes(spec, options)}
    data_dirs, _ = volume_dirs(spec)
    shared = app_dirs(spec, data_dirs)
    for_app = {m["mountPath"]: m for m in volume_mounts(spec, for_app=True)}
    pod_volumes = {v.get("name"): v for v in pod.get("volumes") or [] if isinstance(v, dict)}
    claims = {(t.get("metadata") or {}).get("name") for t in (doc.get("spec") or {}).get("volumeClaimTemplates")
              or [] if isinstance(t, dict)} if doc.get("kind") == "StatefulSet" else set()
    warnings: list[str] = []

    # the init container's mounts, each (mount, is on a volume of ours): the spec, --files, then the replaced
    # containers' (the spec writes where they wrote, and reads what they read), /tmp unless they had one, then
    # each directory the spec writes: through a mount that holds it already, else on an emptyDir of ours
    fixed = [m for m in container["volumeMounts"] if m["mountPath"] not in data_dirs]
    mounts: list[tuple[Doc, bool]] = [(m, True) for m in fixed if m["mountPath"] != "/tmp"]
    holders: dict[int, str] = {}  # id of a replaced container's mount -> that container's name
    for source in sources:
        for m in source.get("volumeMounts") or []:
            if isinstance(m, dict) and isinstance(m.get("mountPath"), str):
                taken_over = _writable(m, pod_volumes) if any(under(d, _path(m)) for d in data_dirs) else \
                    _clean(copy.deepcopy(m))
                holders[id(taken_over)] = str(source.get("name"))
                mounts.append((taken_over, False))
    mounts += [(m, True) for m in fixed if m["mountPath"] == "/tmp"]
    others = [*apps, *(c for c in inits if c not in sources)]
    app_mounts: dict[str, list[Doc]] = {}
    for directory in data_dirs:
        held = _covering(directory, [m for m, _ in mounts])
        if held is None:
            for other in others:
                held = _covering(directory, other.get("volumeMounts") or [])
                if held is not None:
                    mounts.append((_writable(held, pod_volumes), False))
                    break
        if held is not None:
            kinds = [k for k in READ_ONLY_VOLUMES if k in pod_volumes.get(held.get("name"), {})]
            if kinds and held.get("name") not in ours:
                warnings.append(f"{directory}: the spec writes there, on the pod's {kinds[0]} volume "
                                f"{held['name']} (at {held['mountPath']}), which is read-only: the step will fail")
            continue
        mounts.append(({"name": volume_name(directory), "mountPath": directory}, True))
        for other in others:  # the pod's own volumes inside it stay where the spec's files land on them
            for inner in other.get("volumeMounts") or []:
                if isinstance(inner, dict) and isinstance(inner.get("mountPath"), str) and \
                        _path(inner) != directory and under(_path(inner), directory):
                    mounts.append((_writable(inner, pod_volumes), False))
        if directory in shared:
            for app in apps:
                app_mounts.setdefault(str(app.get("name")), []).append(copy.deepcopy(for_app[directory]))

    # one mount per path: the first wins, but two replaced containers' different volumes at one path are both
    # kept (read-only ones joined into one projected volume) or refused in words
    unique: list[tuple[Doc, bool]] = []
    at: dict[str, int] = {}
    joined: list[Doc] = []
    names_used = set(pod_volumes) | claims | set(ours)
    for mount, is_ours in mounts:
        path = _path(mount)
        if path not in at:
            at[path] = len(unique)
            unique.append((mount, is_ours))
            continue
        first, _ = unique[at[path]]
        if id(first) not in holders or id(mount) not in holders:
            continue
        if _same_source(first, mount):
            if mount.get("readOnly") is not True:  # writable when one of them wrote through it
                first.pop("readOnly", None)
            continue
        volume, merged, note = _join(first, mount, pod_volumes, where, path, holders, names_used)
        names_used.add(volume["name"])
        holders[id(merged)] = holders[id(first)] + " and " + holders[id(mount)]
        joined = [v for v in joined if v["name"] != first["name"]] + [volume]
        unique[at[path]] = (merged, False)
        warnings.append(note)
    # our volumes, each named apart from the pod's own (the same volume from an earlier render is kept)
    used = {m["name"] for m, is_ours in unique if is_ours} | {m["name"] for ms in app_mounts.values() for m in ms}
    taken = set(pod_volumes) | claims | {v["name"] for v in joined}
    renamed: dict[str, str] = {}
    added: list[Doc] = []
    for name, volume in ours.items():
        if name not in used or (name in pod_volumes and _same(pod_volumes[name], volume)):
            continue
        final, number = name, 1
        while final in taken:
            number += 1
            final = f"prefect-init-{name}"[:58].rstrip("-") + (f"-{number}" if number > 2 else "")
        taken.add(final)
        renamed[name] = final
        added.append({**volume, "name": final})
    for mount in [*(m for m, is_ours in unique if is_ours), *(m for ms in app_mounts.values() for m in ms)]:
        mount["name"] = renamed.get(mount["name"], mount["name"])
    added += joined
    container["volumeMounts"] = [m for m, _ in unique]
    env, env_from = _merged_env(container, sources, referenced_variables(spec.text))
    context, notes, said = (container["securityContext"], privilege_note(spec), []) if keep_init else \
        security(spec, sources, pod)
    warnings += said
    container = {k: v for k, v in container.items() if k not in ("env", "envFrom", "volumeMounts")}
    container = {"name": container.pop("name"), "image": container.pop("image"), "args": container.pop("args"),
                 "env": env, **({"envFrom": env_from} if env_from else {}),
                 "volumeMounts": [m for m, _ in unique], **container, "securityContext": context}
    return Changes(container=_clean(container), kept_before=kept_before, removed=removed,
                   app_mounts={k: [_clean(m) for m in v] for k, v in app_mounts.items()},
                   volumes=[_clean(v) for v in added], annotation={ANNOTATION: spec_sha256(spec)},
                   config_maps=[config_map(spec, options), *files_config_maps(spec, options)], warnings=warnings,
                   notes=notes)


def _clean(value: Any) -> Any:
    """``value`` without the keys whose value is null (a ``subPath: null`` a chart's template left): what render
    writes has no null in it."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _same_source(a: Doc, b: Doc) -> bool:
    return all(a.get(k) == b.get(k) for k in ("name", "subPath", "subPathExpr"))


_PROJECTABLE = ("configMap", "secret", "downwardAPI", "projected")


def _projection(volume: Doc) -> tuple[list[Doc], int | None]:
    """(the projected volume sources that give what ``volume`` gave, its defaultMode)."""
    kind, source = next((k, volume[k]) for k in _PROJECTABLE if isinstance(volume.get(k), dict))
    mode = _number(source.get("defaultMode"))
    if kind == "projected":
        return [copy.deepcopy(s) for s in source.get("sources") or [] if isinstance(s, dict)], mode
    if kind == "secret":
        body = {"name": source.get("secretName"), "items": source.get("items"), "optional": source.get("optional")}
    elif kind == "configMap":
        body = {"name": source.get("name"), "items": source.get("items"), "optional": source.get("optional")}
    else:
        body = {"items": source.get("items")}
    return [{kind: _clean(copy.deepcopy(body))}], mode


def _join(first: Doc, second: Doc, pod_volumes: dict[Any, Doc], where: str, path: str, holders: dict[int, str],
          taken: set[Any]) -> tuple[Doc, Doc, str]:
    """Two replaced containers' volumes at one path, for the one container that replaces both: (a projected
    volume with the files of both, its mount, render's warning), or :class:`IntoError` when they cannot be joined
    (a writable volume, a single file's ``subPath``)."""
    volumes = [pod_volumes.get(m.get("name")) or {} for m in (first, second)]
    joinable = all(any(isinstance(v.get(k), dict) for k in _PROJECTABLE) for v in volumes) and \
        not any(m.get("subPath") or m.get("subPathExpr") for m in (first, second))
    if not joinable:
        raise IntoError(f"{where}: initContainers {holders[id(first)]} and {holders[id(second)]} both mount a volume "
                        f"at {path} ({first.get('name')} and {second.get('name')}), and the prefect-init container "
                        "that replaces them can mount only one there: mount one of them at another path in your "
                        "manifest (and change its script's paths with it), then import and render again")
    sources: list[Doc] = []
    modes: list[int] = []
    for volume in volumes:
        more, mode = _projection(volume)
        sources += more
        modes += [mode] if mode is not None else []
    base = ("prefect-init-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-"))[:58].rstrip("-")
    name, number = base, 1
    while name in taken:
        number += 1
        name = f"{base}-{number}"
    projected: Doc = {"sources": sources}
    if modes:  # the most open of their modes: a script that was executable stays so
        projected["defaultMode"] = functools.reduce(operator.or_, modes)
    mount = {"name": name, "mountPath": first["mountPath"], "readOnly": True}
    note = (f"{path}: initContainers {holders[id(first)]} and {holders[id(second)]} both mounted a volume there "
            f"({first.get('name')}, {second.get('name')}): the prefect-init container mounts both there as one "
            f"projected volume, {name} (a file name both hold cannot be twice: keep their names apart)")
    return {"name": name, "projected": projected}, mount, note


BASELINE_CAPABILITIES = frozenset({"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
                                   "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
"""The capabilities Pod Security's "baseline" level lets a container add; any other (NET_ADMIN, NET_RAW,
SYS_ADMIN, ...) or ``privileged: true`` needs the "privileged" level."""


@dataclass(frozen=True)
class Identity:
    """Who a replaced initContainer ran as: its own securityContext over the pod's (None: not said, the image's
    user)."""

    name: str
    user: int | None
    group: int | None
    privileged: bool
    capabilities: frozenset[str]
    user_from: str
    """``its runAsUser`` or ``the pod's runAsUser``."""


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _mapping(value: Any) -> Doc:
    return value if isinstance(value, dict) else {}


def identity(container: Doc, pod: Doc) -> Identity:
    own: Doc = _mapping(container.get("securityContext"))
    pods: Doc = _mapping(pod.get("securityContext"))
    user, user_from = _number(own.get("runAsUser")), "its runAsUser"
    if user is None:
        user, user_from = _number(pods.get("runAsUser")), "the pod's runAsUser"
    group = _number(own.get("runAsGroup"))
    if group is None:
        group = _number(pods.get("runAsGroup"))
    added = _mapping(own.get("capabilities")).get("add")
    added = added if isinstance(added, list) else []
    names = frozenset(str(c).upper().removeprefix("CAP_") for c in added if isinstance(c, str) and c.strip())
    return Identity(str(container.get("name")), user, group, own.get("privileged") is True, names, user_from)


def pod_security_level(context: Doc) -> str:
    """The lowest Pod Security level that admits a container with this securityContext."""
    added = set((context.get("capabilities") or {}).get("add") or [])
    if context.get("privileged") or added - BASELINE_CAPABILITIES:
        return "privileged"
    if context.get("runAsUser") == 0 or not context.get("runAsNonRoot") or added - {"NET_BIND_SERVICE"} or \
            context.get("allowPrivilegeEscalation") is not False:
        return "baseline"
    return "restricted"


def security(spec: Spec, sources: list[Doc], pod: Doc) -> tuple[Doc, list[str], list[str]]:
    """(the prefect-init container's securityContext, render's notes, its warnings), from the replaced
    initContainers' securityContext over the pod's: the steps run as the user those containers ran as (a file
    they chmod is that user's), with the privileges and capabilities they had.

    - They agree on a user: that user (and their group), unless a step sets an owner (root, with CHOWN, FOWNER
      and DAC_OVERRIDE, as without a user).
    - They disagree: root with the union of their capabilities and the three an owner's files need, which can do
      what each did; a warning says so.
    - No user said (their images' users): the image's user 10001, or root when a step sets an owner or they added
      capabilities or were privileged (a capability works for root only).
    Root always has CHOWN, FOWNER and DAC_OVERRIDE (as root in the old containers had, by the runtime's
    defaults); ``privileged`` is kept when one of them was."""
    ids = [identity(c, pod) for c in sources]
    owners = owner_steps(spec)
    users = sorted({i.user for i in ids if i.user is not None})
    privileged = any(i.privileged for i in ids)
    capabilities = set().union(*(i.capabilities for i in ids)) if ids else set()
    notes: list[str] = []
    warnings: list[str] = []
    if not users and not privileged and not capabilities:
        return container_security_context(bool(owners)), privilege_note(spec), warnings
    group: int | None = None
    if len(users) > 1:
        user = 0
        said = ", ".join(f"{i.name} (uid {i.user})" for i in ids if i.user is not None)
        warnings.append(f"the initContainers it replaces ran as different users: {said}: the prefect-init container "
                        "runs as root, with what each had, so that every step can do what its container did; files "
                        "it creates belong to root unless a step sets an owner")
    elif users:
        user = users[0]
        groups = {i.group for i in ids if i.user == user and i.group is not None}
        group = groups.pop() if len(groups) == 1 else None
        if owners and user != 0:
            user, group = 0, None
    else:
        user = 0 if (owners or privileged or capabilities) else UID
    if user == 0:
        capabilities |= set(OWNER_CAPABILITIES)
        group = 0 if group is None else group
    context: Doc = {"runAsNonRoot": user != 0, "runAsUser": user}
    if group is not None:
        context["runAsGroup"] = group
    context["readOnlyRootFilesystem"] = True
    context["allowPrivilegeEscalation"] = privileged  # Kubernetes refuses privileged without it
    if user == 0 or privileged:
        context["privileged"] = privileged
    ordered = [c for c in OWNER_CAPABILITIES if c in capabilities] + sorted(capabilities - set(OWNER_CAPABILITIES))
    context["capabilities"] = {"drop": ["ALL"], **({"add": ordered} if capabilities else {})}
    context["seccompProfile"] = {"type": "RuntimeDefault"}
    names = ", ".join(i.name for i in ids)
    who = (f"uid {user}" + (f", gid {group}" if group is not None else "") +
           (f" ({' and '.join(sorted({i.user_from for i in ids if i.user == user}))}, as "
            f"{', '.join(i.name for i in ids if i.user == user)} ran)" if any(i.user == user for i in ids) else ""))
    if user == 0 and owners and users and users != [0]:
        who += f": {', '.join(owners)} set{'s' if len(owners) == 1 else ''} an owner, which needs root"
    level = pod_security_level(context)
    why = []
    if privileged:
        why.append("privileged: true from " + ", ".join(i.name for i in ids if i.privileged))
    beyond = sorted(capabilities - BASELINE_CAPABILITIES)
    if beyond:
        why.append(", ".join(beyond) + " from " + ", ".join(i.name for i in ids if i.capabilities & set(beyond)))
    notes.append(f"note: the prefect-init container takes over the securityContext of the initContainers it replaces "
                 f"({names}): runs as {who}"
                 + (f", capabilities {', '.join('CAP_' + c for c in ordered)} added to a dropped ALL"
                    if capabilities else "")
                 + (", privileged" if privileged else "")
                 + f". The namespace's Pod Security must allow '{level}'"
                 + (f" (above 'baseline': {'; '.join(why)})" if level == "privileged" else "") + ".")
    return context, notes, warnings


def _list_of_mappings(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, dict) for v in value))


def check_pod(pod: Doc, where: str) -> None:
    """The parts of a pod render reads are what Kubernetes wants them to be (else one line, not a crash)."""
    for key in ("initContainers", "containers", "volumes"):
        if not _list_of_mappings(pod.get(key)):
            raise IntoError(f"{where}: {key}: expected a list of mappings")
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        if not isinstance(container.get("name"), str):
            raise IntoError(f"{where}: a container without a name")
        for key in ("volumeMounts", "env", "envFrom"):
            if not _list_of_mappings(container.get(key)):
                raise IntoError(f"{where}: container {container['name']}: {key}: expected a list of mappings")
        for mount in container.get("volumeMounts") or []:
            if not isinstance(mount.get("mountPath"), str) or not isinstance(mount.get("name"), str):
                raise IntoError(f"{where}: container {container['name']}: a volumeMount without a name or "
                                "mountPath")


def _path(mount: Doc) -> str:
    return posixpath.normpath(str(mount.get("mountPath")))


def _covering(path: str, candidates: list[Doc]) -> Doc | None:
    """The deepest of ``candidates`` mounted at ``path`` or above it."""
    best = [m for m in candidates if isinstance(m, dict) and isinstance(m.get("mountPath"), str)
            and under(path, _path(m))]
    return max(best, key=lambda m: len(_path(m)), default=None)


def _writable(mount: Doc, pod_volumes: dict[Any, Doc]) -> Doc:
    """A copy of a mount of the pod's own, for the prefect-init container to write through (a volume that can
    never be written, a ConfigMap's, stays read-only)."""
    out = copy.deepcopy(mount)
    if not any(k in pod_volumes.get(mount.get("name"), {}) for k in READ_ONLY_VOLUMES):
        out.pop("readOnly", None)
    return out


def _merged_env(container: Doc, sources: list[Doc], reads: set[str] | None = None) -> tuple[list[Doc], list[Doc]]:
    """The prefect-init container's variables, then those of the containers it replaces (so ``${VAR}`` in the
    imported spec resolve), each name once: ours win. A variable the spec reads under a container's own name
    (``SETUP_STORE_SQL_DATABASE``, see :func:`own_prefix`) gets that container's entry under that name, so each
    step sees exactly what its container saw. ``envFrom``: theirs, then ours (a later source wins)."""
    env = list(container.get("env") or [])
    names = {e.get("name") for e in env}
    theirs_from: list[Doc] = []
    for source in sources:
        for entry in source.get("env") or []:
            if not isinstance(entry, dict):
                continue
            own = f"{own_prefix(str(source.get('name')))}_{entry.get('name')}"
            if reads and own in reads and own not in names:
                names.add(own)
                env.append({**copy.deepcopy(entry), "name": own})
            if entry.get("name") not in names:
                names.add(entry.get("name"))
                env.append(copy.deepcopy(entry))
        theirs_from += [copy.deepcopy(e) for e in source.get("envFrom") or [] if isinstance(e, dict)]
    env_from: list[Doc] = []
    for entry in [*theirs_from, *(container.get("envFrom") or [])]:
        if not any(_same(entry, e) for e in env_from):
            env_from.append(entry)
    return env, env_from


def apply(doc: Doc, changes: Changes) -> Doc:
    """``doc`` (a copy) with the changes made."""
    doc = copy.deepcopy(doc)
    found = pod_template(doc)
    assert found is not None
    meta, pod = found
    inits = [c for c in pod.get("initContainers") or [] if c.get("name") not in changes.removed]
    position = len(changes.kept_before)
    pod["initContainers"] = [*inits[:position], changes.container, *inits[position:]]
    for app in pod.get("containers") or []:
        for mount in changes.app_mounts.get(str(app.get("name")), []):
            app.setdefault("volumeMounts", []).append(mount)
    if changes.volumes:
        pod["volumes"] = [*(pod.get("volumes") or []), *changes.volumes]
    meta["annotations"] = {**(meta.get("annotations") or {}), **changes.annotation}
    return doc


@dataclass
class Into:
    """The result of ``--into``: the YAML stream, and what render says on stderr."""

    text: str
    warnings: list[str]
    changes: Changes
    workload: Doc


def render_into(spec: Spec, options: RenderOptions, text: str, where: str, workload: str | None = None,
                keep_init: bool = False) -> Into:
    """The user's stream ``text`` (read from ``where``) with the spec's prefect-init container in its workload,
    the spec's ConfigMap first, every other document as written."""
    parts = parse_stream(text, where)
    origin = provenance(spec.text)
    index = select(parts, where, workload, origin)
    doc = parts[index].data
    only = origin.containers if origin is not None else None
    changes = compute(spec, options, doc, keep_init, only)
    changed = apply(doc, changes)
    names = {(c["metadata"]["name"], c["metadata"].get("namespace")) for c in changes.config_maps}
    out = [_stream_start(changes.config_maps)]
    for number, part in enumerate(parts):
        if number == index:  # only what changed is new: comments, styles and indentation kept
            out.append(changed_document(part.raw, doc, changed))
        elif isinstance(part.data, dict) and part.data.get("kind") == "ConfigMap" and (
                (part.data.get("metadata") or {}).get("name"),
                (part.data.get("metadata") or {}).get("namespace")) in names:
            continue  # an earlier render's copy: replaced by the one first in the stream
        else:
            out.append(print_part(part))
    return Into("".join(out), changes.warnings, changes, changed)


def _stream_start(docs: list[Doc]) -> str:
    from prefect_init.render import to_yaml

    return to_yaml(docs)


def unprovided_note_into(spec: Spec, options: RenderOptions, changes: Changes) -> list[str]:
    """render's note on the variables nothing sets, counting what the prefect-init container takes over from
    the initContainers it replaces."""
    from prefect_init.render.env import unprovided_note

    given = tuple((str(e.get("name")), "") for e in changes.container.get("env") or [])
    sources = ("(from the replaced initContainers)",) if changes.container.get("envFrom") else ()
    # a literal credential the replaced initContainers had in their env is copied as it was (refusing it would
    # stop the move; it was in the clear before), and said: one line each, never its value
    copied = [(str(e.get("name")), str(e["value"])) for e in changes.container.get("env") or []
              if isinstance(e.get("value"), str)]
    warnings = [f"warning: env {name}: a literal credential, copied from your manifest's initContainers as it was; "
                f"put it in a Secret (kubectl create secret generic {spec.name}-init-env --from-literal={name}=...) "
                "and give it with envFrom" for name, value in copied if copied_credential(name, value)]
    return warnings + unprovided_note(spec, replace(options, env=options.env + given,
                                                    env_from_secrets=options.env_from_secrets + sources))


_REFERENCES = re.compile(r"\$\([A-Za-z_][A-Za-z0-9_]*\)|\$\{[A-Za-z_][A-Za-z0-9_]*\}")
"""Kubernetes' ``$(VAR)`` (and a spec's ``${VAR}``): a reference to another variable, not a value."""
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*(PRIVATE KEY|CERTIFICATE REQUEST)-----")


def copied_credential(name: str, value: str) -> bool:
    """A literal env value copied from the replaced initContainers is called a credential by its name
    (``*PASSWORD*``, ``*TOKEN*``, ``*SECRET*``, ``*_KEY``, ...) or its shape (a URL or DSN with a password in it, a
    PEM private key), never because a step reads it: a prefix path, a port, a host name or a log level is none. A
    password that is a reference (``postgres://app:$(DB_PASSWORD)@db``) is not in the value."""
    from prefect_init.spec.credentials import CREDENTIAL_NAME, is_literal_credential

    if CREDENTIAL_NAME.search(name):
        return True
    return bool(_PEM.search(value)) or is_literal_credential(_REFERENCES.sub("", value))


def path_warnings_into(spec: Spec, options: RenderOptions, changes: Changes) -> list[str]:
    """render's path warnings, counting every mount of the prefect-init container (the pod's own volumes it
    took over) as providing what a step reads under it."""
    from prefect_init.render.files import read_warnings
    from prefect_init.render.pod import path_warnings

    own = read_warnings(spec, volume_dirs(spec)[0], options)
    mounted = [str(m["mountPath"]) for m in changes.container["volumeMounts"]]
    return [*(w for w in path_warnings(spec, options) if w not in own), *read_warnings(spec, mounted, options)]
