"""render work-pool: the base job template, rendered offline by prefect-kubernetes' own job configuration for a
sample flow run (no Kubernetes API server can run here), is a valid Job in strict mode."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.objects import FlowRun
from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

from tests.helpers import run_cli
from tests.render.kube import assert_valid

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "myapp.yaml"


def job_for_a_flow_run(template: dict[str, Any], **values: Any) -> dict[str, Any]:
    """What the worker would submit for a flow run of a deployment on this pool."""
    # the worker applies the template's defaults itself; values are the deployment's and the run's job variables
    # a client that is never called (the template names no blocks or variables): nothing is started
    unused = PrefectClient("http://127.0.0.1:9/api")
    config = asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(
        template, values, client=unused))
    config.prepare_for_flow_run(FlowRun(id=uuid.uuid4(), name="brave-otter", flow_id=uuid.uuid4()))
    return dict(config.job_manifest)


def test_the_default_template_is_refused_in_strict_mode() -> None:
    """Positive control: strict checking finds what our template fixes (pod-level parallelism, completions)."""
    job = job_for_a_flow_run(KubernetesWorker.get_default_base_job_template(), image="x")
    with pytest.raises(AssertionError, match=r"parallelism|completions|Additional properties"):
        assert_valid(job)


def test_rendered_job_is_valid_and_hardened() -> None:
    result = run_cli("render", "work-pool", str(EXAMPLE), "--image", "registry.example.com/prefect-init:0.1.0")
    assert result.code == 0, result.output
    template = json.loads(result.stdout)
    job = job_for_a_flow_run(template, env={"APP_VERSION": "1.4.2"}, namespace="apps")
    assert_valid(job)
    assert job["metadata"]["namespace"] == "apps"
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example.com/prefect-init:0.1.0"
    # the image's entrypoint is prefect-init: the worker's command runs through env
    assert container["command"] == ["/usr/bin/env"] and container["args"][:3] == ["prefect", "flow-run", "execute"]
    env = {e["name"]: e for e in container["env"]}
    assert env["APP_VERSION"]["value"] == "1.4.2"  # a job variable of the run reaches the container
    assert env["PREFECT_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "prefect-api-key"
    assert "value" not in env["PREFECT_API_KEY"]
    assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["secrets"]["emptyDir"] == {"medium": "Memory"}
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/secrets", "/tmp"}


def test_runs_heartbeat_at_the_frequency_the_zombie_automation_counts_on() -> None:
    """The template pins PREFECT_FLOWS_HEARTBEAT_FREQUENCY (deployments/automations/zombie-runs.json waits three of
    them); a deployment's or a run's env sets another, and then the run's container has that one only."""
    from prefect_init.prefect_adapter.workpool import base_job_template
    from prefect_init.render.automation import ZOMBIE_WITHIN, zombie_runs
    from prefect_init.render.options import RenderOptions

    template = base_job_template(RenderOptions(image="registry.example.com/prefect-init:0.1.0"))

    def heartbeat(**values: Any) -> list[str]:
        container = job_for_a_flow_run(template, **values)["spec"]["template"]["spec"]["containers"][0]
        return [e["value"] for e in container["env"] if e["name"] == "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"]

    assert heartbeat() == ["180"]
    assert zombie_runs()["trigger"]["within"] == ZOMBIE_WITHIN == 3 * 180
    assert heartbeat(env={"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "60", "APP_VERSION": "1.4.2"}) == ["60"]
