"""render init-container --into: the user's own manifests, the replaced initContainers gone, the prefect-init
container in their place on the user's volumes, every other field and document as it was."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from prefect_init.render.into import ANNOTATION
from tests.helpers import run_cli
from tests.render.kube import assert_valid, load_stream
from tests.render.workloads_inline import KINDS, SPEC, SPEC_PLAIN, pod_of, without_changes, workload

IMAGE = "registry.example.com/prefect-init:0.1.0-init"


def into(tmp_path: Path, kind: str, *args: str, spec: str | None = None, manifest: str | None = None,
         code: int = 0) -> tuple[list[dict[str, Any]], str, str]:
    """(the printed documents, stdout, stderr) of render init-container --into for ``kind``."""
    spec_path = tmp_path / "init.yaml"
    spec_path.write_text(spec if spec is not None else SPEC.format(kind=kind))
    target = tmp_path / "web.yaml"
    target.write_text(manifest if manifest is not None else workload(kind))
    result = run_cli("render", "init-container", str(spec_path), "--image", IMAGE, "--into", str(target), *args)
    assert result.code == code, result.output
    return (load_stream(result.stdout) if code == 0 else []), result.stdout, result.stderr


def check_unique(pod: dict[str, Any], claims: tuple[str, ...] = ("state",)) -> None:
    """No volume name twice, no mountPath twice in a container, every mount of a volume (or a claim template)."""
    names = [v["name"] for v in pod.get("volumes") or []]
    assert len(names) == len(set(names)), names
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        paths = [m["mountPath"] for m in container.get("volumeMounts") or []]
        assert len(paths) == len(set(paths)), (container["name"], paths)
        assert {m["name"] for m in container.get("volumeMounts") or []} <= set(names) | set(claims), container


@pytest.mark.parametrize("kind", KINDS)
def test_the_workload_gets_the_prefect_init_container_on_its_own_volumes(tmp_path: Path, kind: str) -> None:
    docs, out, err = into(tmp_path, kind)
    original = [d for d in yaml.safe_load_all(workload(kind)) if d]
    config_map, service, changed = docs
    for doc in docs:
        assert_valid(doc)
    assert config_map["kind"] == "ConfigMap" and config_map["metadata"]["name"] == "web-init-spec"
    assert config_map["data"]["init.yaml"] == SPEC.format(kind=kind)
    assert config_map["metadata"].get("namespace") == original[1]["metadata"].get("namespace")
    assert service == original[0]
    assert "# the web service: kept as written, comments and all" in out and "name: web   # inline comment" in out
    pod, before = pod_of(changed), pod_of(copy.deepcopy(original[1]))
    check_unique(pod)
    init, = pod["initContainers"]  # perms and config are gone
    assert init["name"] == "prefect-init" and init["image"] == IMAGE
    mounts = {m["mountPath"]: m for m in init["volumeMounts"]}
    # the user's volumes where the replaced containers had them: the app sees what the init container writes
    assert mounts["/data"] == {"name": "data", "mountPath": "/data"}
    assert mounts["/etc/web"] == {"name": "conf", "mountPath": "/etc/web"}
    assert mounts["/etc/prefect-init"]["readOnly"] is True
    # a directory no container mounts gets an emptyDir, shared with every app container
    assert mounts["/cache/web"]["name"] == "cache-web"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["cache-web"] == {"name": "cache-web", "emptyDir": {}}
    assert volumes["init-spec"] == {"name": "init-spec", "configMap": {"name": "web-init-spec"}}
    assert pod["volumes"][:2] == before["volumes"]
    for app, was in zip(pod["containers"], before["containers"], strict=True):
        assert app["volumeMounts"][:len(was["volumeMounts"])] == was["volumeMounts"]
        assert app["volumeMounts"][len(was["volumeMounts"]):] == [{"name": "cache-web", "mountPath": "/cache/web"}]
    # the replaced containers' variables, ours winning (POD_NAME is the Downward API's)
    env = {e["name"]: e for e in init["env"]}
    assert env["APP_ENV"] == {"name": "APP_ENV", "value": "production"}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert [e["name"] for e in init["env"]].count("POD_NAME") == 1
    assert init["envFrom"] == [{"secretRef": {"name": "web-env"}}]
    # a variable from a Secret is carried over as a reference, never as a value
    assert env["DB_PASSWORD"] == {"name": "DB_PASSWORD",
                                  "valueFrom": {"secretKeyRef": {"name": "web-db", "key": "password"}}}
    meta = changed["metadata"] if kind == "Pod" else (
        changed["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else changed["spec"])["template"]["metadata"]
    # the pod's own annotations kept, the spec's added
    assert meta["annotations"] == {"team": "web",
                                   ANNOTATION: hashlib.sha256(SPEC.format(kind=kind).encode()).hexdigest()}
    assert without_changes(changed) == without_changes(original[1])  # every other field as it was
    assert "runs as root" in err  # perms sets an owner
    assert "APP_ENV" not in err  # provided by the replaced container's env


def test_keep_init_puts_the_prefect_init_container_first_and_keeps_the_others(tmp_path: Path) -> None:
    docs, _, _ = into(tmp_path, "Deployment", "--keep-init")
    pod = pod_of(docs[-1])
    assert [c["name"] for c in pod["initContainers"]] == ["prefect-init", "perms", "config"]
    original = pod_of([d for d in yaml.safe_load_all(workload("Deployment")) if d][1])
    assert pod["initContainers"][1:] == original["initContainers"]
    check_unique(pod)
    assert_valid(docs[-1])


def test_the_provenance_line_replaces_exactly_its_containers_at_the_first_ones_place(tmp_path: Path) -> None:
    manifest = workload("Deployment").replace("initContainers:\n", (
        "initContainers:\n        - name: wait-db\n          image: busybox:1.36\n"
        "          command: [sh, -c, 'until nc -z db 5432; do sleep 1; done']\n"
        "        - name: proxy\n          image: envoy:1\n          restartPolicy: Always\n"), 1)
    docs, _, _ = into(tmp_path, "Deployment", manifest=manifest)
    pod = pod_of(docs[-1])
    assert [c["name"] for c in pod["initContainers"]] == ["wait-db", "proxy", "prefect-init"]
    # without a provenance line: every initContainer but the sidecar
    docs, _, _ = into(tmp_path, "Deployment", spec=SPEC_PLAIN, manifest=manifest)
    assert [c["name"] for c in pod_of(docs[-1])["initContainers"]] == ["prefect-init", "proxy"]


def test_rendering_into_its_own_output_changes_nothing(tmp_path: Path) -> None:
    _, first, _ = into(tmp_path, "StatefulSet")
    _, second, _ = into(tmp_path, "StatefulSet", manifest=first)
    assert second == first


def test_a_volume_name_of_the_users_is_never_taken(tmp_path: Path) -> None:
    conf = "- {name: conf, emptyDir: {}}"
    manifest = workload("Deployment").replace(conf, conf + "\n        - {name: tmp, hostPath: {path: /x}}")
    docs, _, _ = into(tmp_path, "Deployment", manifest=manifest)
    pod = pod_of(docs[-1])
    check_unique(pod)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp"] == {"name": "tmp", "hostPath": {"path": "/x"}}
    assert volumes["prefect-init-tmp"] == {"name": "prefect-init-tmp", "emptyDir": {}}
    init = pod["initContainers"][0]
    assert {"name": "prefect-init-tmp", "mountPath": "/tmp"} in init["volumeMounts"]


def test_an_apps_mount_of_a_renamed_volume_follows_the_new_name(tmp_path: Path) -> None:
    """The pod has a volume of its own named as ours (cache-web, mounted by no container): ours is renamed, and
    the app containers that read what the spec writes mount ours by its new name, not the user's volume."""
    conf = "- {name: conf, emptyDir: {}}"
    manifest = workload("Deployment").replace(conf, conf + "\n        - {name: cache-web, hostPath: {path: /x}}")
    docs, _, _ = into(tmp_path, "Deployment", manifest=manifest)
    pod = pod_of(docs[-1])
    check_unique(pod)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["cache-web"] == {"name": "cache-web", "hostPath": {"path": "/x"}}  # the user's, untouched
    ours = next(name for name, v in volumes.items() if v == {"name": name, "emptyDir": {}} and "cache" in name)
    assert ours != "cache-web"
    init = pod["initContainers"][0]
    assert {"name": ours, "mountPath": "/cache/web"} in init["volumeMounts"]
    for app in pod["containers"]:  # the app reads on the volume the init container writes
        assert {"name": ours, "mountPath": "/cache/web"} in app["volumeMounts"], app["volumeMounts"]


def test_a_spec_writing_into_an_apps_subpath_mount_writes_through_it(tmp_path: Path) -> None:
    """No replaced container mounts /srv: the app's mount at /srv (a subPath of its volume) is reused."""
    spec = "version: 1\nname: web\nsteps:\n  - name: dirs\n    files: {dirs: [{path: /srv/public/img, mode: '0755'}]}\n"
    pod = ("containers:\n  - name: app\n    image: nginx:1.27\n    volumeMounts:\n"
           "      - {name: site, mountPath: /srv, subPath: www, readOnly: true}\nvolumes:\n"
           "  - {name: site, persistentVolumeClaim: {claimName: site}}\n")
    docs, _, _ = into(tmp_path, "Deployment", spec=spec, manifest=workload("Deployment", pod))
    result = pod_of(docs[-1])
    init = result["initContainers"][0]
    assert {"name": "site", "mountPath": "/srv", "subPath": "www"} in init["volumeMounts"]  # writable
    assert result["containers"][0]["volumeMounts"] == [{"name": "site", "mountPath": "/srv", "subPath": "www",
                                                        "readOnly": True}]
    assert [v["name"] for v in result["volumes"]].count("site") == 1
    check_unique(result)


@pytest.mark.parametrize(("args", "manifest", "message"), [
    (("--workload", "deployment/nope"), None, "no Deployment/nope in it"),
    (("--workload", "service/web"), None, "Service/web has no pod template"),
    (("--workload", "web"), None, "expected KIND/NAME"),
    ((), "kind: [unclosed\n", "not valid YAML"),
    ((), "apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", "no Deployment/web in it"),
    ((), "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {template: {spec: {initContainers: x, "
         "containers: 5}}}\n", "Deployment/web: initContainers: expected a list of mappings"),
    (("--app-image", "x"), None, "--app-image is not for --into"),
    (("--namespace", "x"), None, "--namespace is not for --into"),
    (("--service", "x"), None, "--service is for compose only"),
    (("-o", "x"), None, "-o is for kustomize only"),
])
def test_problems_are_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], manifest: str | None,
                                          message: str) -> None:
    _, out, err = into(tmp_path, "Deployment", *args, manifest=manifest, code=2)
    assert out == "" and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_a_missing_file_two_workloads_and_flags_without_into(tmp_path: Path) -> None:
    spec = tmp_path / "init.yaml"
    spec.write_text(SPEC_PLAIN)
    missing = run_cli("render", "init-container", str(spec), "--image", IMAGE, "--into", str(tmp_path / "no.yaml"))
    assert missing.code == 2 and "no such file" in missing.stderr and missing.stdout == ""
    two = tmp_path / "two.yaml"
    two.write_text(workload("Deployment") + "---\n" + workload("Job").split("---\n", 1)[1])
    result = run_cli("render", "init-container", str(spec), "--image", IMAGE, "--into", str(two))
    assert result.code == 2 and "2 workloads (Deployment/web, Job/web): say which with --workload" in result.stderr
    chosen = run_cli("render", "init-container", str(spec), "--image", IMAGE, "--into", str(two), "--workload",
                     "job/web")
    assert chosen.code == 0, chosen.stderr
    docs = load_stream(chosen.stdout)
    assert [d["kind"] for d in docs] == ["ConfigMap", "Service", "Deployment", "Job"]
    assert "initContainers" in pod_of(docs[2]) and pod_of(docs[2])["initContainers"][0]["name"] == "perms"
    alone = run_cli("render", "init-container", str(spec), "--image", IMAGE, "--keep-init")
    assert alone.code == 2 and "--keep-init is for --into only" in alone.stderr


def test_a_stale_provenance_line_is_an_error(tmp_path: Path) -> None:
    spec = SPEC.format(kind="Deployment").replace("perms, config", "perms, seed")
    _, _, err = into(tmp_path, "Deployment", spec=spec, code=2)
    assert "has no initContainer seed" in err


def test_renders_own_deployment_carries_the_same_annotation(tmp_path: Path) -> None:
    spec = tmp_path / "init.yaml"
    spec.write_text(SPEC_PLAIN)
    result = run_cli("render", "init-container", str(spec), "--image", IMAGE)
    assert result.code == 0, result.stderr
    deployment = load_stream(result.stdout)[-1]
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {
        ANNOTATION: hashlib.sha256(SPEC_PLAIN.encode()).hexdigest()}


CORPUS = Path(__file__).resolve().parent.parent / "importer" / "import_corpus"


def with_selector(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of a workload cut down to its pod, with the selector Kubernetes requires (its pod's labels)."""
    doc = copy.deepcopy(doc)
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet") and "selector" not in doc["spec"]:
        template = doc["spec"]["template"]
        labels = template.setdefault("metadata", {}).setdefault("labels", {}) or {"app": "corpus"}
        template["metadata"]["labels"] = labels
        doc["spec"]["selector"] = {"matchLabels": dict(labels)}
    return doc


@pytest.mark.parametrize("name", ["file-wait", "bitnami-postgresql"])
def test_a_workload_imported_by_prefect_init_import_renders_into_its_file(tmp_path: Path, name: str) -> None:
    """``prefect-init import`` (the importer's corpus): its spec, rendered into the file it came from."""
    manifest = CORPUS / f"{name}.yaml"
    assert manifest.exists(), f"{manifest}: the corpus file this test is about is missing"
    spec = tmp_path / "init.yaml"
    imported = run_cli("import", str(manifest), "-o", str(spec))
    assert imported.code == 0, imported.stderr
    result = run_cli("render", "init-container", str(spec), "--image", IMAGE, "--into", str(manifest))
    assert result.code == 0, result.stderr
    assert "no volume" not in result.stderr, result.stderr  # what the replaced containers mounted is mounted
    docs = load_stream(result.stdout)
    original = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    assert docs[0]["kind"] == "ConfigMap" and len(docs) == len(original) + 1
    changed = next(d for d in docs[1:] if d["kind"] in KINDS)
    before = next(d for d in original if d["kind"] == changed["kind"])
    assert_valid(docs[0])
    # a corpus manifest is cut down to its pod (no selector): both get the same one, and then both must validate
    assert_valid(with_selector(before))  # the control: the original, completed, is valid
    assert_valid(with_selector(changed))
    pod = pod_of(changed)
    check_unique(pod, tuple(t["metadata"]["name"] for t in changed["spec"].get("volumeClaimTemplates") or []))
    replaced = [c["name"] for c in pod_of(copy.deepcopy(before))["initContainers"]]
    assert "prefect-init" in [c["name"] for c in pod["initContainers"]]
    assert not set(replaced) & {c["name"] for c in pod["initContainers"]}
    assert without_changes(changed) == without_changes(before)


def test_a_literal_credential_copied_from_the_replaced_containers_is_said_never_shown(tmp_path: Path) -> None:
    """The replaced initContainers' env is copied as it was (it was in the clear before); a literal credential in
    it gets one warning line naming the variable and the Secret to put it in, never the value."""
    canary = "canary-into-5e1f-pw"
    manifest = f"""\
apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  initContainers:
    - name: migrate
      image: busybox
      command: [sh, -c, "migrate"]
      env:
        - {{name: DATABASE_URL, value: "postgres://app:{canary}@db:5432/app"}}
        - {{name: LOG_LEVEL, value: debug}}
  containers:
    - {{name: web, image: web}}
"""
    spec = "version: 1\nname: web\nsteps:\n  - name: migrate\n    command: [migrate, '${DATABASE_URL}']\n"
    docs, _, stderr = into(tmp_path, "Pod", spec=spec, manifest=manifest)
    env = {e["name"]: e.get("value") for e in pod_of(docs[1])["initContainers"][0]["env"]}
    assert env["DATABASE_URL"] == f"postgres://app:{canary}@db:5432/app" and env["LOG_LEVEL"] == "debug"
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: env ")]
    assert warnings == ["warning: env DATABASE_URL: a literal credential, copied from your manifest's "
                        "initContainers as it was; put it in a Secret (kubectl create secret generic web-init-env "
                        "--from-literal=DATABASE_URL=...) and give it with envFrom"], stderr
    assert canary not in stderr


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
    f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8))
"""A "billion laughs": ten to the ninth x's from a few hundred bytes."""


@pytest.mark.parametrize("kind", ["init-container", "compose"])
def test_a_yaml_bomb_into_is_refused_in_one_line(tmp_path: Path, kind: str) -> None:
    (tmp_path / "init.yaml").write_text(SPEC_PLAIN)
    (tmp_path / "bomb.yaml").write_text(BOMB)
    result = run_cli("render", kind, str(tmp_path / "init.yaml"), "--image", IMAGE, "--into",
                     str(tmp_path / "bomb.yaml"), timeout=30)
    assert result.code == 2, result.output
    assert result.stderr.splitlines() == [
        f"render {kind}: {tmp_path / 'bomb.yaml'}: refused: its aliases expand it by more than 1,000,000 values"]


def test_the_changed_documents_comments_after_its_start_are_kept(tmp_path: Path) -> None:
    manifest = "# the app\n---\n# before deployment\n" + workload("Deployment")
    _, stdout, _ = into(tmp_path, "Deployment", manifest=manifest, spec=SPEC_PLAIN)
    assert "# the app\n" in stdout and "# before deployment\n" in stdout, stdout[:400]


@pytest.mark.parametrize(("kind", "text"), [
    ("init-container", "apiVersion: v1\nkind: Pod\nmetadata: [a]\nspec: {containers: [{name: a, image: b}]}\n"),
    ("init-container", "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: [1]}\n"),
    ("init-container", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w}\nspec: {template: {metadata: "
                       "{annotations: [x]}, spec: {containers: [{name: a, image: b}]}}}\n"),
    ("compose", "services:\n  web:\n"),
])
def test_a_field_of_the_wrong_type_is_one_line_and_exit_2(tmp_path: Path, kind: str, text: str) -> None:
    (tmp_path / "init.yaml").write_text(SPEC_PLAIN)
    (tmp_path / "mine.yaml").write_text(text)
    result = run_cli("render", kind, str(tmp_path / "init.yaml"), "--image", IMAGE, "--into",
                     str(tmp_path / "mine.yaml"))
    assert result.code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 and "is not of the type it must be" in result.stderr, result.stderr
    assert "Traceback" not in result.output and "internal error" not in result.output
