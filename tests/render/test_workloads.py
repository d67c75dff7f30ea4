"""render init-container, job and cronjob: every document valid in strict mode, and the fields each is for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prefect_init.render.workloads import active_deadline
from prefect_init.spec.load import load_spec
from tests.helpers import clean_env, run_cli, write_spec
from tests.render.kube import assert_valid, load_stream

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "myapp.yaml"
IMAGE = "registry.example.com/prefect-init:0.1.0"


def render(*args: str) -> list[dict[str, Any]]:
    result = run_cli("render", *args, "--image", IMAGE)
    assert result.code == 0, result.output
    return load_stream(result.stdout)


def pod_of(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def check_pod_security(pod: dict[str, Any], container: dict[str, Any]) -> None:
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                      "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize("args", [
    ("init-container",), ("init-container", "--api-url", "http://prefect:4200/api", "--namespace", "apps"),
    ("job",), ("job", "--hook", "helm"), ("job", "--hook", "argo", "--service-account", "myapp"),
    ("cronjob", "--schedule", "*/15 * * * *", "--timezone", "Europe/Berlin"),
])
def test_every_document_is_valid_in_strict_mode(args: tuple[str, ...]) -> None:
    docs = render(args[0], str(EXAMPLE), *args[1:])
    assert docs[0]["kind"] == "ConfigMap" and len(docs) == 2
    for doc in docs:
        assert_valid(doc)


def test_init_container_deployment() -> None:
    config_map, deployment = render("init-container", str(EXAMPLE))
    assert config_map["metadata"]["name"] == "myapp-init-spec"
    assert config_map["data"]["init.yaml"] == EXAMPLE.read_text()  # as written: ${DATABASE_URL} resolves in the pod
    pod = pod_of(deployment)
    init, = pod["initContainers"]
    assert init["image"] == IMAGE and init["args"] == ["run", "/etc/prefect-init/init.yaml"]
    assert init["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert init["resources"]["requests"] and init["resources"]["limits"]
    check_pod_security(pod, init)
    names = {e["name"] for e in init["env"]}
    assert "PREFECT_API_URL" not in names and "PREFECT_API_KEY" not in names  # no --api-url: a local run
    assert {"POD_NAME", "POD_NAMESPACE", "NODE_NAME"} <= names
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["init-spec"]["configMap"]["name"] == "myapp-init-spec"
    assert volumes["secrets"]["emptyDir"] == {"medium": "Memory"}
    assert volumes["status"]["emptyDir"] == {} and volumes["config"]["emptyDir"] == {}
    init_mounts = {m["mountPath"]: m for m in init["volumeMounts"]}
    assert init_mounts["/etc/prefect-init"]["readOnly"] is True
    assert {"/secrets", "/status", "/config", "/repo", "/data/uploads", "/data/logs", "/tmp"} <= set(init_mounts)
    app, = pod["containers"]
    assert app["image"] == "registry.example.invalid/your-app:replace-me"
    app_mounts = {m["mountPath"]: m for m in app["volumeMounts"]}
    assert app_mounts["/status"]["readOnly"] is True and app_mounts["/secrets"]["readOnly"] is True
    assert "/etc/prefect-init" not in app_mounts


def test_api_url_sets_the_url_and_the_key_from_a_secret() -> None:
    _, deployment = render("init-container", str(EXAMPLE), "--api-url", "http://prefect:4200/api",
                           "--app-image", "myorg/myapp:1.4.2")
    pod = pod_of(deployment)
    env = {e["name"]: e for e in pod["initContainers"][0]["env"]}
    assert env["PREFECT_API_URL"] == {"name": "PREFECT_API_URL", "value": "http://prefect:4200/api"}
    assert env["PREFECT_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "prefect-api-key"
    assert "value" not in env["PREFECT_API_KEY"]
    assert pod["containers"][0]["image"] == "myorg/myapp:1.4.2"


def test_a_spec_without_status_file_gets_one_on_the_status_volume(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: tiny
        steps:
          - name: a
            command: [echo, a]
        """)
    _, deployment = render("init-container", str(spec))
    pod = pod_of(deployment)
    assert pod["initContainers"][0]["args"] == ["run", "/etc/prefect-init/init.yaml",
                                                "--status-file", "/status/result.json"]
    assert {v["name"] for v in pod["volumes"]} == {"init-spec", "tmp", "secrets", "status"}


def test_job_deadline_hooks_and_failure_policy() -> None:
    config_map, job = render("job", str(EXAMPLE), "--hook", "helm")
    spec = job["spec"]
    # wait-for-services 2m, then secrets -> validate-secrets (5m each): the longest path, plus the margin
    assert spec["activeDeadlineSeconds"] == 120 + 300 + 300 + 120
    assert spec["activeDeadlineSeconds"] == active_deadline(load_spec(str(EXAMPLE), defer_unset=True))
    assert spec["ttlSecondsAfterFinished"] > 0 and spec["backoffLimit"] >= 0
    assert pod_of(job)["restartPolicy"] == "Never"
    rule = spec["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [1, 2]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation"
    # the ConfigMap is a hook too, created first (a lower weight), under its own name
    assert config_map["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(config_map["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    assert pod_of(job)["volumes"][0]["configMap"]["name"] == config_map["metadata"]["name"] == "myapp-init-spec-hook"
    _, argo = render("job", str(EXAMPLE), "--hook", "argo")
    assert argo["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert argo["metadata"]["annotations"]["argocd.argoproj.io/hook-delete-policy"] == "BeforeHookCreation"
    _, plain = render("job", str(EXAMPLE))
    assert "annotations" not in plain["metadata"]


def test_cronjob() -> None:
    _, cron = render("cronjob", str(EXAMPLE), "--schedule", "0 3 * * *")
    spec = cron["spec"]
    assert spec["schedule"] == "0 3 * * *" and spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    assert pod_of(cron)["restartPolicy"] == "Never"


def test_a_spec_with_an_error_renders_nothing(tmp_path: Path) -> None:
    bad = write_spec(tmp_path, """
        version: 1
        name: bad
        steps:
          - name: a
            command: [echo, a]
            retrys: 3
          - name: b
            after: [nope]
            command: [echo, b]
        """, name="bad.yaml")
    result = run_cli("render", "job", str(bad), "--image", IMAGE)
    assert result.code == 2
    assert result.stdout == ""
    assert f"{bad}:6: steps[0].retrys: unknown key (did you mean `retries`?)" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (("cronjob",), "--schedule is required"),
    (("job", "--schedule", "* * * * *"), "--schedule is for cronjob only"),
    (("job", "--hook", "flux"), "--hook is 'helm' or 'argo'"),
    (("deployment",), "unknown kind 'deployment'"),
    (("cronjob", "--schedule", "every day"), "expected five cron fields"),
])
def test_bad_flags_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    result = run_cli("render", args[0], str(EXAMPLE), "--image", IMAGE, *args[1:])
    assert result.code == 2 and result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unset_variables_are_left_for_the_pod_but_set_ones_are_checked(tmp_path: Path) -> None:
    """render validates everything it can here; a value from ${VAR} not set here is resolved in the pod."""
    spec = write_spec(tmp_path, """
        version: 1
        name: vars
        steps:
          - name: a
            wait:
              - tcp: ${DB_HOSTPORT}
            timeout: ${WAIT_TIMEOUT:-1m}
        """)
    result = run_cli("render", "job", str(spec), "--image", IMAGE, env=clean_env())
    assert result.code == 0, result.output
    assert "${DB_HOSTPORT}" in result.stdout
    result = run_cli("render", "job", str(spec), "--image", IMAGE, env=clean_env(WAIT_TIMEOUT="soon"))
    assert result.code == 2 and "steps[0].timeout" in result.stderr
