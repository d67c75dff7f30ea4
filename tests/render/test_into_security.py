"""render init-container --into loses nothing of the initContainers it replaces: the user and group they ran as
(theirs or the pod's), their privileges and capabilities (and the Pod Security level that needs, said on
stderr), every volume they mounted (two at one path joined or refused in words), and no null is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import run_cli
from tests.render.kube import assert_valid, load_stream

IMAGE = "registry.example.com/prefect-init:0.1.0-init"

SPEC = """\
# imported by prefect-init import from StatefulSet/db (initContainers: {names})
version: 1
name: db
steps:
{steps}"""

COMMAND = """\
  - name: {name}
    command: [sh, -c, "{script}"]
"""

OWNER = """\
  - name: owner
    files:
      dirs: [{path: /var/lib/postgresql/data, owner: "999:999"}]
"""


def workload(inits: list[dict[str, Any]], pod_context: dict[str, Any] | None = None,
             volumes: list[dict[str, Any]] | None = None) -> str:
    pod: dict[str, Any] = {}
    if pod_context is not None:
        pod["securityContext"] = pod_context
    pod["initContainers"] = inits
    pod["containers"] = [{"name": "postgres", "image": "postgres:16",
                          "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]}]
    pod["volumes"] = volumes or []
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}},
        sort_keys=False)


def init(name: str, script: str, context: dict[str, Any] | None = None,
         mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "image": "busybox:1.36", "command": ["sh", "-c", script]}
    if context is not None:
        out["securityContext"] = context
    out["volumeMounts"] = mounts if mounts is not None else [{"name": "data", "mountPath": "/var/lib/postgresql/data"}]
    return out


def render(tmp_path: Path, inits: list[dict[str, Any]], pod_context: dict[str, Any] | None = None,
           volumes: list[dict[str, Any]] | None = None, extra_steps: str = "", code: int = 0,
           manifest: str | None = None) -> tuple[dict[str, Any], dict[str, Any], str, str]:
    """(the prefect-init container, the pod, stdout, stderr) of render --into for these initContainers, the spec
    one command step per container (the script it ran) and ``extra_steps``."""
    steps = "".join(COMMAND.format(name=c["name"], script=c["command"][-1]) for c in inits) + extra_steps
    spec = tmp_path / "init.yaml"
    spec.write_text(SPEC.format(names=", ".join(c["name"] for c in inits), steps=steps))
    target = tmp_path / "db.yaml"
    target.write_text(manifest if manifest is not None else workload(inits, pod_context, volumes))
    result = run_cli("render", "init-container", str(spec), "--image", IMAGE, "--into", str(target))
    assert result.code == code, result.stderr
    if code:
        return {}, {}, result.stdout, result.stderr
    docs = load_stream(result.stdout)
    for doc in docs:
        assert_valid(doc)
    pod = docs[-1]["spec"]["template"]["spec"]
    container, = (c for c in pod["initContainers"] if c["name"] == "prefect-init")
    return container, pod, result.stdout, result.stderr


CHMOD = "chmod -R 700 /var/lib/postgresql/data/pgdata || true"


def test_the_steps_run_as_the_pods_user_the_replaced_container_ran_as(tmp_path: Path) -> None:
    """The issue's case: the chmod ran as the pod's uid 999 (fsGroup 999); the step runs as 999, not 10001."""
    container, pod, _, err = render(tmp_path, [init("fix-perms", CHMOD)],
                                    {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999})
    context = container["securityContext"]
    assert (context["runAsUser"], context["runAsGroup"], context["runAsNonRoot"]) == (999, 999, True)
    assert context["capabilities"] == {"drop": ["ALL"]} and context["allowPrivilegeEscalation"] is False
    assert pod["securityContext"] == {"runAsUser": 999, "runAsGroup": 999, "fsGroup": 999}  # the pod's, kept
    assert "runs as uid 999, gid 999 (the pod's runAsUser" in err, err
    assert "Pod Security must allow 'restricted'" in err, err


def test_a_step_that_sets_an_owner_runs_as_root_with_the_owner_capabilities_only(tmp_path: Path) -> None:
    container, _, _, err = render(tmp_path, [init("fix-perms", CHMOD)], {"runAsUser": 999, "fsGroup": 999},
                                  extra_steps=OWNER)
    context = container["securityContext"]
    assert (context["runAsUser"], context["runAsNonRoot"], context["privileged"]) == (0, False, False)
    assert context["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FOWNER", "DAC_OVERRIDE"]}
    assert "owner sets an owner, which needs root" in err and "must allow 'baseline'" in err, err


def test_privileged_and_network_capabilities_are_kept_and_the_pod_security_level_said(tmp_path: Path) -> None:
    inits = [init("sysctl", "sysctl -w vm.max_map_count=262144", {"privileged": True, "runAsUser": 0}, mounts=[]),
             init("iptables", "iptables -t nat -A PREROUTING -p tcp --dport 80 -j REDIRECT --to-port 8080",
                  {"capabilities": {"add": ["NET_ADMIN", "CAP_NET_RAW"]}}, mounts=[])]
    container, _, _, err = render(tmp_path, inits)
    context = container["securityContext"]
    assert context["privileged"] is True and context["allowPrivilegeEscalation"] is True
    assert context["runAsUser"] == 0
    assert {"NET_ADMIN", "NET_RAW"} <= set(context["capabilities"]["add"])
    assert "The namespace's Pod Security must allow 'privileged' (above 'baseline': privileged: true from " \
           "sysctl; NET_ADMIN, NET_RAW from iptables)" in err, err


def test_network_capabilities_alone_need_the_privileged_level_too(tmp_path: Path) -> None:
    inits = [init("iptables", "iptables -A INPUT -j ACCEPT", {"capabilities": {"add": ["NET_ADMIN"]}}, mounts=[])]
    container, _, _, err = render(tmp_path, inits)
    assert container["securityContext"]["privileged"] is False
    assert "NET_ADMIN" in container["securityContext"]["capabilities"]["add"]
    assert "must allow 'privileged' (above 'baseline': NET_ADMIN from iptables)" in err, err


def test_containers_that_ran_as_different_users_give_root_with_the_union_and_a_warning(tmp_path: Path) -> None:
    inits = [init("a", "chmod 700 /var/lib/postgresql/data/a", {"runAsUser": 999}),
             init("b", "chmod 700 /var/lib/postgresql/data/b", {"runAsUser": 1000,
                                                                 "capabilities": {"add": ["SYS_TIME"]}})]
    container, _, _, err = render(tmp_path, inits)
    context = container["securityContext"]
    assert context["runAsUser"] == 0
    assert set(context["capabilities"]["add"]) == {"CHOWN", "FOWNER", "DAC_OVERRIDE", "SYS_TIME"}
    assert "ran as different users: a (uid 999), b (uid 1000)" in err, err


def test_two_config_maps_at_one_path_are_both_mounted(tmp_path: Path) -> None:
    """Two containers mounted their own ConfigMap at /tmp/scripts/: both sets of files are there (a projected
    volume), executable as they were; the pod's own volumes are left as they were."""
    volumes = [{"name": "setup", "configMap": {"name": "setup-scripts", "defaultMode": 0o755}},
               {"name": "seed", "configMap": {"name": "seed-scripts"}}]
    inits = [init("setup", "sh /tmp/scripts/setup.sh", mounts=[{"name": "setup", "mountPath": "/tmp/scripts/"}]),
             init("seed", "sh /tmp/scripts/seed.sh", mounts=[{"name": "seed", "mountPath": "/tmp/scripts"}])]
    container, pod, _, err = render(tmp_path, inits, volumes=volumes)
    at = [m for m in container["volumeMounts"] if m["mountPath"].rstrip("/") == "/tmp/scripts"]
    assert len(at) == 1, container["volumeMounts"]
    joined = {v["name"]: v for v in pod["volumes"]}[at[0]["name"]]
    assert joined["projected"]["sources"] == [{"configMap": {"name": "setup-scripts"}},
                                              {"configMap": {"name": "seed-scripts"}}]
    assert joined["projected"]["defaultMode"] == 0o755
    assert pod["volumes"][:2] == volumes
    assert "/tmp/scripts: initContainers setup and seed both mounted a volume there" in err, err


def test_two_writable_volumes_at_one_path_are_refused_in_words(tmp_path: Path) -> None:
    volumes = [{"name": "one", "emptyDir": {}}, {"name": "two", "emptyDir": {}}]
    inits = [init("a", "touch /work/a", mounts=[{"name": "one", "mountPath": "/work"}]),
             init("b", "touch /work/b", mounts=[{"name": "two", "mountPath": "/work"}])]
    _, _, out, err = render(tmp_path, inits, volumes=volumes, code=2)
    assert out == ""
    assert "initContainers a and b both mount a volume at /work (one and two)" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_no_null_is_written(tmp_path: Path) -> None:
    """A chart's template left ``subPath: null`` (and a null env value source) in the replaced container."""
    inits = [init("conf", "cp /src/app.conf /var/lib/postgresql/data/app.conf",
                  mounts=[{"name": "data", "mountPath": "/var/lib/postgresql/data", "subPath": None},
                          {"name": "src", "mountPath": "/src", "readOnly": None}])]
    inits[0]["env"] = [{"name": "LEVEL", "value": "debug", "valueFrom": None}]
    manifest = workload(inits, volumes=[{"name": "src", "configMap": {"name": "src"}}])
    assert "subPath: null" in manifest  # the positive control: the input has it
    container, _, out, _ = render(tmp_path, inits, manifest=manifest)
    assert "null" not in out and "~" not in out.replace("~/", ""), out

    def nulls(value: Any) -> int:
        if isinstance(value, dict):
            return sum(v is None or nulls(v) for v in value.values())
        if isinstance(value, list):
            return sum(nulls(v) for v in value)
        return 0

    assert nulls(container) == 0
    assert {"name": "src", "mountPath": "/src"} in container["volumeMounts"]
    assert {"name": "LEVEL", "value": "debug"} in container["env"]


@pytest.mark.parametrize("context", [{"runAsUser": 999}, {"privileged": True}])
def test_keep_init_keeps_the_images_user(tmp_path: Path, context: dict[str, Any]) -> None:
    """With --keep-init nothing is replaced: the containers keep their own privileges, ours stays restricted."""
    spec = tmp_path / "init.yaml"
    spec.write_text("version: 1\nname: db\nsteps:\n" + COMMAND.format(name="x", script="true"))
    target = tmp_path / "db.yaml"
    target.write_text(workload([init("fix-perms", CHMOD, context)]))
    result = run_cli("render", "init-container", str(spec), "--image", IMAGE, "--into", str(target), "--keep-init")
    assert result.code == 0, result.stderr
    pod = load_stream(result.stdout)[-1]["spec"]["template"]["spec"]
    ours, theirs = pod["initContainers"]
    assert ours["securityContext"]["runAsUser"] == 10001 and theirs["securityContext"] == context


def test_kustomize_gives_the_same_user_capabilities_and_joined_volume(tmp_path: Path) -> None:
    """kustomize shares render --into's changes: the patch built by kubectl gives the same pod."""
    import shutil
    import subprocess

    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed here")
    volumes = [{"name": "setup", "configMap": {"name": "setup-scripts"}},
               {"name": "seed", "configMap": {"name": "seed-scripts"}}]
    inits = [init("setup", "sh /tmp/scripts/setup.sh", {"capabilities": {"add": ["NET_ADMIN"]}},
                  mounts=[{"name": "setup", "mountPath": "/tmp/scripts"}]),
             init("seed", "sh /tmp/scripts/seed.sh", mounts=[{"name": "seed", "mountPath": "/tmp/scripts"}])]
    container, pod, _, _ = render(tmp_path, inits, {"runAsUser": 999}, volumes=volumes)
    directory = tmp_path / "k"
    directory.mkdir()
    (directory / "db.yaml").write_text((tmp_path / "db.yaml").read_text())
    written = run_cli("render", "kustomize", str(tmp_path / "init.yaml"), "--image", IMAGE, "--into",
                      str(directory / "db.yaml"), "-o", str(directory))
    assert written.code == 0, written.stderr
    assert "must allow 'privileged' (above 'baseline': NET_ADMIN from setup)" in written.stderr
    built = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    workload_doc = next(d for d in load_stream(built.stdout) if d["kind"] == "StatefulSet")
    built_pod = workload_doc["spec"]["template"]["spec"]
    ours, = (c for c in built_pod["initContainers"] if c["name"] == "prefect-init")
    assert ours["securityContext"] == container["securityContext"]
    assert container["securityContext"]["runAsUser"] == 999
    assert "NET_ADMIN" in container["securityContext"]["capabilities"]["add"]
    assert {v["name"]: v for v in built_pod["volumes"]} == {v["name"]: v for v in pod["volumes"]}
