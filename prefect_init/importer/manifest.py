"""Reading a manifest stream (``kubectl get -o yaml``, a chart's ``helm template`` output): its workloads, their
initContainers, and what Kubernetes itself does to a container's ``command``/``args`` (``$(VAR)`` references)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prefect_init.render.provenance import SHORT_KINDS, WORKLOAD_KINDS

Doc = dict[str, Any]


class ImportProblem(Exception):
    """The manifest or the command line is wrong: one line, never a secret's value (exit 2)."""


@dataclass
class Container:
    """One initContainer, as the manifest has it."""

    name: str
    image: str
    command: list[str] | None
    args: list[str] | None
    env: list[Doc] = field(default_factory=list)
    env_from: list[Doc] = field(default_factory=list)
    working_dir: str | None = None
    mounts: list[Doc] = field(default_factory=list)
    security: Doc = field(default_factory=dict)
    """Its ``securityContext`` (privileged, capabilities, user)."""


@dataclass
class Workload:
    kind: str
    name: str
    namespace: str | None
    pod: Doc
    init_containers: list[Container]
    volumes: list[Doc]
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    """The ConfigMaps of the same stream (name -> data): a script an initContainer mounts from one is read."""
    sidecars: list[str] = field(default_factory=list)
    """initContainers with ``restartPolicy: Always`` (Kubernetes' native sidecars): they run beside the app for
    the pod's life, no init step; left out (``render --into`` leaves them too)."""

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


def _mapping(value: Any, where: str) -> Doc | None:
    """``value`` if it is a mapping, None if it is not there; anything else is a bad manifest."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ImportProblem(f"{where}: expected a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ImportProblem(f"{where}: expected a list")
    return value


def _text(value: Any, where: str, required: bool = False) -> str | None:
    """A string of the manifest, None when it is not there; a number or a boolean is taken as YAML wrote it, a
    mapping or a list is a bad manifest."""
    if value is None:
        if required:
            raise ImportProblem(f"{where}: missing")
        return None
    if isinstance(value, dict | list):
        raise ImportProblem(f"{where}: expected a string")
    return str(value).lower() if isinstance(value, bool) else str(value)


def _pod_spec(doc: Doc, ref: str) -> tuple[Doc, str] | None:
    """(the pod spec, where it is: ``spec.template.spec``), or None for a workload without one."""
    spec = _mapping(doc.get("spec"), f"{ref}: spec")
    if spec is None:
        return None
    if doc.get("kind") == "Pod":
        return spec, "spec"
    where = "spec"
    if doc.get("kind") == "CronJob":
        template = _mapping(spec.get("jobTemplate"), f"{ref}: spec.jobTemplate")
        spec = _mapping((template or {}).get("spec"), f"{ref}: spec.jobTemplate.spec")
        if spec is None:
            return None
        where = "spec.jobTemplate.spec"
    template = _mapping(spec.get("template"), f"{ref}: {where}.template")
    pod = _mapping((template or {}).get("spec"), f"{ref}: {where}.template.spec")
    return (pod, f"{where}.template.spec") if pod is not None else None


def _strings(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise ImportProblem(f"{where} is not a list")
    out = []
    for index, item in enumerate(value):
        if isinstance(item, dict | list):
            raise ImportProblem(f"{where}[{index}] is not a string (a ': ' in it made YAML read a mapping: quote it)")
        out.append("" if item is None else str(item).lower() if isinstance(item, bool) else str(item))
    return out


def _entries(raw: Any, where: str) -> Iterator[tuple[str, Doc]]:
    """Each entry of a list of mappings (``env``, ``envFrom``, ``volumeMounts``), with its place: one that is no
    mapping is a problem, named by its place."""
    for index, entry in enumerate(_list(raw, where)):
        here = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise ImportProblem(f"{here}: expected a mapping")
        yield here, entry


_VALUE_FROM = ("secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef")
_ENV_FROM = ("secretRef", "configMapRef")


def _env(raw: Any, where: str) -> list[Doc]:
    env = []
    for here, entry in _entries(raw, where):
        if not isinstance(entry.get("name"), str):  # a variable's name: 7 is none
            raise ImportProblem(f"{here}.name: {'missing' if entry.get('name') is None else 'expected a string'}")
        if isinstance(entry.get("value"), dict | list):
            raise ImportProblem(f"{here}.value: expected a string")
        value_from = _mapping(entry.get("valueFrom"), f"{here}.valueFrom")
        for key in _VALUE_FROM:
            _mapping((value_from or {}).get(key), f"{here}.valueFrom.{key}")
        env.append(entry)
    return env


def _env_from(raw: Any, where: str) -> list[Doc]:
    out = []
    for here, entry in _entries(raw, where):
        for key in _ENV_FROM:
            _mapping(entry.get(key), f"{here}.{key}")
        _text(entry.get("prefix"), f"{here}.prefix")
        out.append(entry)
    return out


def _mounts(raw: Any, where: str) -> list[Doc]:
    out = []
    for here, mount in _entries(raw, where):
        _text(mount.get("name"), f"{here}.name", required=True)
        _text(mount.get("mountPath"), f"{here}.mountPath", required=True)
        out.append({**mount, "name": str(mount["name"]), "mountPath": str(mount["mountPath"])})
    return out


def _container(raw: Any, where: str, path: str) -> Container:
    """One initContainer; ``where`` is the workload (``Deployment/web``), ``path`` the container's place in it
    (``spec.template.spec.initContainers[0]``)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ImportProblem(f"{where}: an initContainer without a name")
    here = f'{where}: initContainer "{raw["name"]}"'
    at = f"{where}: {path}"
    return Container(name=raw["name"], image=_text(raw.get("image"), f"{at}.image") or "",
                     command=_strings(raw.get("command"), f"{here}: command"),
                     args=_strings(raw.get("args"), f"{here}: args"), env=_env(raw.get("env"), f"{at}.env"),
                     env_from=_env_from(raw.get("envFrom"), f"{at}.envFrom"),
                     working_dir=_text(raw.get("workingDir"), f"{at}.workingDir"),
                     mounts=_mounts(raw.get("volumeMounts"), f"{at}.volumeMounts"),
                     security=_mapping(raw.get("securityContext"), f"{at}.securityContext") or {})


def _documents(text: str, source: str) -> list[Doc]:
    from prefect_init.render.stream import StreamProblem, load_all

    try:
        docs = load_all(text, source)  # a "billion laughs" manifest is refused before it is walked
    except StreamProblem as exc:
        raise ImportProblem(str(exc)) from None
    out: list[Doc] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out += [item for item in doc["items"] if isinstance(item, dict)]
        elif isinstance(doc, dict):
            out.append(doc)
        elif doc is not None:
            raise ImportProblem(f"{source}: not a Kubernetes manifest (a document is not a mapping)")
    return out


def workloads(text: str, source: str = "the manifest") -> list[Workload]:
    """Every workload of the stream (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, Pod), in order;
    other documents (Services, ConfigMaps, ...) are skipped."""
    out = []
    docs = _documents(text, source)
    for doc in docs:
        kind, meta = doc.get("kind"), doc.get("metadata")
        if kind not in WORKLOAD_KINDS or not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            continue
        where = f"{kind}/{meta['name']}"
        found = _pod_spec(doc, where)
        if found is None:
            continue
        pod, path = found
        raws = _list(pod.get("initContainers"), f"{where}: {path}.initContainers")
        sidecars = [raw.get("name") for raw in raws if isinstance(raw, dict) and raw.get("restartPolicy") == "Always"]
        init = [_container(raw, where, f"{path}.initContainers[{index}]") for index, raw in enumerate(raws)
                if not (isinstance(raw, dict) and raw.get("restartPolicy") == "Always")]
        volumes = []
        for index, volume in enumerate(_list(pod.get("volumes"), f"{where}: {path}.volumes")):
            if not isinstance(volume, dict):
                raise ImportProblem(f"{where}: {path}.volumes[{index}]: expected a mapping")
            _text(volume.get("name"), f"{where}: {path}.volumes[{index}].name", required=True)
            volumes.append({**volume, "name": str(volume["name"])})
        out.append(Workload(kind=kind, name=meta["name"], namespace=meta.get("namespace"), pod=pod,
                            init_containers=init, volumes=volumes, sidecars=[str(n) for n in sidecars]))
    config_maps = {str(doc["metadata"]["name"]): {str(k): v for k, v in doc["data"].items() if isinstance(v, str)}
                   for doc in docs if doc.get("kind") == "ConfigMap" and isinstance(doc.get("metadata"), dict)
                   and isinstance(doc["metadata"].get("name"), str) and isinstance(doc.get("data"), dict)}
    for workload in out:
        workload.config_maps = config_maps
    return out


def choose(found: list[Workload], wanted: str | None, source: str) -> Workload:
    """The workload ``--workload KIND/NAME`` names, or the only one with initContainers."""
    with_init = [w for w in found if w.init_containers]
    if wanted is None:
        if len(with_init) == 1:
            return with_init[0]
        if not with_init:
            seen = ", ".join(w.ref for w in found) or "none"
            raise ImportProblem(f"{source}: no workload with initContainers (workloads: {seen})")
        choices = ", ".join(f"--workload {w.ref}" for w in with_init)
        raise ImportProblem(f"{source}: several workloads have initContainers: give one of {choices}")
    kind_text, sep, name = wanted.partition("/")
    kind = SHORT_KINDS.get(kind_text.lower()) or next((k for k in WORKLOAD_KINDS if k.lower() == kind_text.lower()),
                                                       None)
    if not sep or not name or kind is None:
        raise ImportProblem(f"--workload {wanted!r}: expected KIND/NAME, like Deployment/web (kinds: "
                            f"{', '.join(WORKLOAD_KINDS)})")
    matches = [w for w in found if w.kind == kind and w.name == name]
    if not matches:
        choices = ", ".join(w.ref for w in with_init) or "none"
        raise ImportProblem(f"{source}: no {kind}/{name} (workloads with initContainers: {choices})")
    if len(matches) > 1:
        spaces = ", ".join(str(w.namespace or "default") for w in matches)
        raise ImportProblem(f"{source}: {kind}/{name} is there {len(matches)} times (namespaces {spaces}): "
                            "import one file at a time")
    if not matches[0].init_containers:
        raise ImportProblem(f"{source}: {kind}/{name} has no initContainers")
    return matches[0]


_K8S_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _same(text: str) -> str:
    return text


def _shell_ref(name: str) -> str:
    return "${" + name + "}"


def kube_expand(text: str, defined: set[str], ref: Callable[[str], str] = _shell_ref,
                literal: Callable[[str], str] = _same) -> str:
    """What Kubernetes makes of ``$(VAR)`` in a container's command, args or an env value: a reference to a
    variable the container defines, written by ``ref`` (``${VAR}`` for the shell, which sees the same variables
    in the prefect-init container); ``$$`` is Kubernetes' escape for ``$``; an undefined ``$(VAR)`` stays as
    written, as Kubernetes leaves it. ``literal`` writes the text between references."""
    parts: list[tuple[bool, str]] = []  # (is a reference, text or name), adjacent literal text joined
    last = 0

    def add_text(piece: str) -> None:
        if parts and not parts[-1][0]:
            parts[-1] = (False, parts[-1][1] + piece)
        elif piece:
            parts.append((False, piece))

    for match in _K8S_REF.finditer(text):
        name = match.group(1)
        if match.group(0) != "$$" and name not in defined:
            continue
        add_text(text[last:match.start()])
        if match.group(0) == "$$":
            add_text("$")
        else:
            parts.append((True, name))
        last = match.end()
    add_text(text[last:])
    return "".join(ref(value) if is_ref else literal(value) for is_ref, value in parts)
