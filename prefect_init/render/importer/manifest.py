"""Reading a manifest stream (``kubectl get -o yaml``, a chart's ``helm template`` output): its workloads, their
initContainers, and what Kubernetes itself does to a container's ``command``/``args`` (``$(VAR)`` references)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from prefect_init.runtime.documents import MAX_DOCUMENT_NODES, alias_expansion

Doc = dict[str, Any]

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
SHORT_KINDS = {"deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
               "sts": "StatefulSet", "statefulset": "StatefulSet", "statefulsets": "StatefulSet",
               "ds": "DaemonSet", "daemonset": "DaemonSet", "daemonsets": "DaemonSet",
               "rs": "ReplicaSet", "replicaset": "ReplicaSet", "replicasets": "ReplicaSet",
               "job": "Job", "jobs": "Job", "cj": "CronJob", "cronjob": "CronJob", "cronjobs": "CronJob",
               "po": "Pod", "pod": "Pod", "pods": "Pod"}
"""``--workload`` accepts the kind as written in the manifest, or as kubectl spells it (``deploy/web``)."""


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


@dataclass
class Workload:
    kind: str
    name: str
    namespace: str | None
    pod: Doc
    init_containers: list[Container]
    volumes: list[Doc]
    sidecars: list[str] = field(default_factory=list)
    """initContainers with ``restartPolicy: Always`` (Kubernetes' native sidecars): they run beside the app for
    the pod's life, no init step; left out (``render --into`` leaves them too)."""

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


def _pod_spec(doc: Doc) -> Doc | None:
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return None
    if doc.get("kind") == "Pod":
        return spec
    if doc.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec")
        if not isinstance(spec, dict):
            return None
    template = spec.get("template")
    pod = template.get("spec") if isinstance(template, dict) else None
    return pod if isinstance(pod, dict) else None


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


def _container(raw: Any, where: str) -> Container:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ImportProblem(f"{where}: an initContainer without a name")
    env = [e for e in raw.get("env") or [] if isinstance(e, dict) and isinstance(e.get("name"), str)]
    env_from = [e for e in raw.get("envFrom") or [] if isinstance(e, dict)]
    mounts = [m for m in raw.get("volumeMounts") or [] if isinstance(m, dict) and isinstance(m.get("mountPath"), str)]
    here = f'{where}: initContainer "{raw["name"]}"'
    return Container(name=raw["name"], image=str(raw.get("image") or ""),
                     command=_strings(raw.get("command"), f"{here}: command"),
                     args=_strings(raw.get("args"), f"{here}: args"), env=env, env_from=env_from,
                     working_dir=raw.get("workingDir") if isinstance(raw.get("workingDir"), str) else None,
                     mounts=mounts)


def _documents(text: str, source: str) -> list[Doc]:
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ImportProblem(f"{source}: not valid YAML: {exc.problem or 'parse error'}{at}") from None
    except yaml.YAMLError:
        raise ImportProblem(f"{source}: not valid YAML") from None
    except RecursionError:
        raise ImportProblem(f"{source}: refused: nested too deeply") from None
    try:
        alias_expansion(docs, MAX_DOCUMENT_NODES)  # a "billion laughs" manifest is refused before it is walked
    except RecursionError:
        raise ImportProblem(f"{source}: refused: nested too deeply") from None
    except Exception as exc:
        raise ImportProblem(f"{source}: refused: {exc}") from None
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
    for doc in _documents(text, source):
        kind, meta = doc.get("kind"), doc.get("metadata")
        if kind not in WORKLOAD_KINDS or not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
            continue
        pod = _pod_spec(doc)
        if pod is None:
            continue
        where = f"{kind}/{meta['name']}"
        raws = [raw for raw in pod.get("initContainers") or []]
        sidecars = [raw.get("name") for raw in raws if isinstance(raw, dict) and raw.get("restartPolicy") == "Always"]
        init = [_container(raw, where) for raw in raws
                if not (isinstance(raw, dict) and raw.get("restartPolicy") == "Always")]
        volumes = [v for v in pod.get("volumes") or [] if isinstance(v, dict)]
        out.append(Workload(kind=kind, name=meta["name"], namespace=meta.get("namespace"), pod=pod,
                            init_containers=init, volumes=volumes, sidecars=[str(n) for n in sidecars]))
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


def has_kube_refs(text: str, defined: set[str]) -> bool:
    return any(m.group(0) == "$$" or m.group(1) in defined for m in _K8S_REF.finditer(text))
