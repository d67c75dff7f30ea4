"""An automatic check over every workload of both import corpora (tests/importer/import_corpus/ and, once it is
there, tests/importer/import_world/): import it, render the spec ``--into`` the same file, and count the
replaced initContainers whose user, privileges, capabilities, mounts or variables (env, envFrom, valueFrom) the
rendered pod's prefect-init container lacks. The count must be 0. One test over every file, so a new corpus file
is checked without a test of its own."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

import pytest

from prefect_init.importer import NothingToImport, import_workload
from prefect_init.importer.manifest import workloads
from prefect_init.render.into import pod_template, render_into
from prefect_init.render.options import RenderOptions
from prefect_init.render.pod import CONTAINER, OWNER_CAPABILITIES
from prefect_init.spec.load import parse_spec

IMPORTER = Path(__file__).resolve().parents[1] / "importer"
CORPORA = [d for d in (IMPORTER / "import_corpus", IMPORTER / "import_world") if d.is_dir()]
WORLD_MINIMUM = 20
IMAGE = "registry.example.com/prefect-init:0.1.0-init"

Doc = dict[str, Any]


def manifests(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*.y*ml") if not p.name.endswith((".spec.yaml", ".spec.yml")))


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _nulls(value: Any) -> int:
    if isinstance(value, dict):
        return sum(v is None or _nulls(v) for v in value.values())
    if isinstance(value, list):
        return sum(_nulls(v) for v in value)
    return 0


def lacks(original: Doc, rendered: Doc, step_env: set[str]) -> list[str]:
    """What the rendered pod's prefect-init container lacks of each initContainer it replaced, one line each.
    ``step_env``: the variables a step of the spec sets itself (a variable two containers defined differently)."""
    _, pod = pod_template(original)  # type: ignore[misc]
    _, new_pod = pod_template(rendered)  # type: ignore[misc]
    ours, = (c for c in new_pod["initContainers"] if c["name"] == CONTAINER)
    kept = {c["name"] for c in new_pod["initContainers"]}
    replaced = [c for c in pod.get("initContainers") or [] if c["name"] not in kept]
    context = ours.get("securityContext") or {}
    added = set((context.get("capabilities") or {}).get("add") or [])
    mounts = {posixpath.normpath(m["mountPath"]): m for m in ours.get("volumeMounts") or []}
    volumes = {v["name"]: v for v in new_pod.get("volumes") or []}
    env = {e["name"]: e for e in ours.get("env") or []}
    env_from = [json.dumps(e, sort_keys=True) for e in ours.get("envFrom") or []]
    out = [f"{CONTAINER}: {_nulls(ours)} null value(s)"] if _nulls(ours) else []
    pod_context = pod.get("securityContext") or {}
    for container in replaced:
        name = container["name"]
        own = container.get("securityContext") or {}
        if own.get("privileged") is True and context.get("privileged") is not True:
            out.append(f"{name}: privileged")
        for capability in (own.get("capabilities") or {}).get("add") or []:
            if str(capability).upper().removeprefix("CAP_") not in added:
                out.append(f"{name}: capability {capability}")
        user = _number(own.get("runAsUser"))
        user = user if user is not None else _number(pod_context.get("runAsUser"))
        if user is not None and context.get("runAsUser") != user and not (
                context.get("runAsUser") == 0 and set(OWNER_CAPABILITIES) <= added):
            out.append(f"{name}: ran as uid {user}, the prefect-init container as {context.get('runAsUser')}")
        for mount in container.get("volumeMounts") or []:
            have = mounts.get(posixpath.normpath(mount["mountPath"]))
            if have is None:
                out.append(f"{name}: mount {mount['name']} at {mount['mountPath']}")
                continue
            if have["name"] == mount["name"] and have.get("subPath") == mount.get("subPath"):
                continue
            theirs: Doc = next((v for v in pod.get("volumes") or [] if v["name"] == mount["name"]), {})
            sources = json.dumps((volumes.get(have["name"]) or {}).get("projected", {}).get("sources", []))
            source = theirs.get("configMap") or theirs.get("secret") or {}
            if not (source and str(source.get("name") or source.get("secretName")) in sources):
                out.append(f"{name}: mount {mount['name']} at {mount['mountPath']} (has {have['name']})")
        for entry in container.get("env") or []:
            have = env.get(entry["name"])
            if have is None:
                out.append(f"{name}: env {entry['name']}")
            elif "valueFrom" in entry and have.get("valueFrom") != entry["valueFrom"]:
                out.append(f"{name}: env {entry['name']} valueFrom")
            elif "valueFrom" not in entry and have.get("value") != entry.get("value") and \
                    entry["name"] not in step_env:
                out.append(f"{name}: env {entry['name']} value")
        for entry in container.get("envFrom") or []:
            if json.dumps(entry, sort_keys=True) not in env_from:
                out.append(f"{name}: envFrom {entry}")
    return out


def step_variables(spec_data: Doc) -> set[str]:
    return {str(k) for step in spec_data.get("steps") or [] if isinstance(step, dict)
            for k in (step.get("env") or {} if isinstance(step.get("env"), dict) else {})}


def test_the_corpora_are_there() -> None:
    """The positive control: the check below runs on files, not on nothing."""
    assert CORPORA and CORPORA[0].name == "import_corpus"
    assert len(manifests(CORPORA[0])) >= 15
    world = IMPORTER / "import_world"
    if world.is_dir():
        assert len(manifests(world)) >= WORLD_MINIMUM, manifests(world)


def test_no_replaced_container_loses_its_user_privileges_mounts_or_variables() -> None:
    problems: list[str] = []
    checked = 0
    for corpus in CORPORA:
        for path in manifests(corpus):
            text = path.read_text()
            for workload in workloads(text, str(path)):
                if not workload.init_containers:
                    continue
                where = f"{corpus.name}/{path.name} {workload.ref}"
                try:
                    imported = import_workload(text, workload.ref, str(path))
                except NothingToImport:
                    continue  # every initContainer kept in its own image: nothing replaced
                spec = parse_spec(imported.spec_text, "<string>", env={}, defer_unset=True)
                result = render_into(spec, RenderOptions(image=IMAGE), text, str(path), workload.ref)
                original = next(d for d in _docs(text) if d.get("kind") == workload.kind and
                                (d.get("metadata") or {}).get("name") == workload.name)
                problems += [f"{where}: {line}" for line in lacks(original, result.workload,
                                                                  step_variables(spec.data or {}))]
                assert "null" not in _workload_text(result.text, workload.name), where
                checked += 1
    assert checked >= 15, checked  # it ran on the corpora, not on nothing
    assert problems == [], "\n".join(problems)


def _docs(text: str) -> list[Doc]:
    import yaml

    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def _workload_text(stream: str, name: str) -> str:
    """The rendered workload document's text (the user's other documents are printed as written)."""
    import yaml

    docs = [d for d in yaml.safe_load_all(stream) if isinstance(d, dict)]
    found = next(d for d in docs if (d.get("metadata") or {}).get("name") == name and d.get("kind") != "ConfigMap")
    return yaml.safe_dump(found)


@pytest.mark.parametrize("what", ["user", "privileged", "mount", "valueFrom"])
def test_the_check_sees_each_loss(what: str) -> None:
    """The check itself, on one rendered workload with one thing taken away: it names it."""
    path = CORPORA[0] / "elasticsearch.yaml"
    text = path.read_text()
    imported = import_workload(text, "StatefulSet/elasticsearch-master", str(path), replace_all=True)
    spec = parse_spec(imported.spec_text, "<string>", env={}, defer_unset=True)
    original = _docs(text)[0]
    _, pod = pod_template(original)  # type: ignore[misc]
    pod["initContainers"][1]["env"] = [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    result = render_into(spec, RenderOptions(image=IMAGE), _dump(original), str(path), None)
    assert lacks(original, result.workload, set()) == []
    _, new_pod = pod_template(result.workload)  # type: ignore[misc]
    ours = next(c for c in new_pod["initContainers"] if c["name"] == CONTAINER)
    if what == "user":
        ours["securityContext"].update(runAsUser=10001, capabilities={"drop": ["ALL"]})
    elif what == "privileged":
        ours["securityContext"]["privileged"] = False
    elif what == "mount":
        ours["volumeMounts"] = [m for m in ours["volumeMounts"] if m["name"] != "elasticsearch-master"]
    else:
        ours["env"] = [e for e in ours["env"] if e["name"] != "PASSWORD"]
    assert lacks(original, result.workload, set()), what


def _dump(doc: Doc) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False)
