"""The Kubernetes workloads that run a spec: a Deployment's initContainer, a pre-rollout Job, a CronJob."""

from __future__ import annotations

import math
from typing import Any

from prefect_init.render.into import ANNOTATION, spec_sha256
from prefect_init.render.options import RenderOptions
from prefect_init.render.pod import (
    CONTAINER,
    Doc,
    config_map,
    container_security_context,
    files_config_maps,
    init_container,
    labels,
    metadata,
    pod_spec,
    volume_mounts,
)
from prefect_init.spec.model import Spec
from prefect_init.spec.plan import build_plan

DEADLINE_MARGIN = 120
"""Seconds added to the Job's deadline for scheduling, the image pull and the interpreter's start."""
JOB_TTL = 86400
"""A finished Job (and its pod's logs) is kept a day; the Prefect run's record outlives it."""

HELM_HOOK = {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-delete-policy": "before-hook-creation"}
ARGO_HOOK = {"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"}


def longest_path_seconds(spec: Spec) -> float:
    """The spec's timeouts (each covering all of a step's attempts) summed along the plan's longest path."""
    plan = build_plan(spec.steps)
    total: dict[str, float] = {}
    for level in plan.levels:
        for name in level:
            before = max((total[dep] for dep in plan.needs[name]), default=0.0)
            total[name] = before + spec.policy(spec.step(name)).timeout
    return max(total.values(), default=0.0)


def active_deadline(spec: Spec) -> int:
    return math.ceil(longest_path_seconds(spec)) + DEADLINE_MARGIN


def _hook_annotations(options: RenderOptions, weight: int) -> dict[str, str] | None:
    """Helm runs hooks by weight: the ConfigMap (-10) exists before the Job (-5) that mounts it."""
    if options.hook == "helm":
        return {**HELM_HOOK, "helm.sh/hook-weight": str(weight)}
    if options.hook == "argo":
        return {**ARGO_HOOK, "argocd.argoproj.io/sync-wave": str(weight)}
    return None


def deployment(spec: Spec, options: RenderOptions) -> list[Doc]:
    """A Deployment whose pods run the spec as their initContainer, then the app with the shared volumes. The
    pod template carries the spec's sha256: a changed spec (a changed ConfigMap alone restarts nothing) rolls it."""
    selector = labels(spec, "app")
    pod = pod_spec(spec, options)
    pod["initContainers"] = [init_container(spec, options)]
    pod["containers"] = [{"name": "app", "image": options.app_image,
                          "volumeMounts": volume_mounts(spec, for_app=True),
                          "securityContext": container_security_context()}]
    doc = {"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": metadata(spec.name, spec, "app", options),
           "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                    "template": {"metadata": {"labels": selector,
                                              "annotations": {ANNOTATION: spec_sha256(spec)}}, "spec": pod}}}
    return [config_map(spec, options), *files_config_maps(spec, options), doc]


def job_spec(spec: Spec, options: RenderOptions) -> Doc:
    """A run of the spec to its end. Exit 1 (a step failed) or 2 (a bad spec) fails the Job at once: the
    spec did its own retrying. A pod lost to a disruption (eviction, preemption) is replaced, uncounted."""
    pod = pod_spec(spec, options, restart_policy="Never")
    pod["containers"] = [init_container(spec, options)]
    component = labels(spec, "init-job")
    return {"backoffLimit": 2, "activeDeadlineSeconds": active_deadline(spec), "ttlSecondsAfterFinished": JOB_TTL,
            "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"containerName": CONTAINER, "operator": "In",
                                                      "values": [1, 2]}},
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
            "template": {"metadata": {"labels": component}, "spec": pod}}


def job(spec: Spec, options: RenderOptions) -> list[Doc]:
    """The pre-rollout Job (``--hook helm|argo`` makes it, and its ConfigMap, a hook)."""
    doc = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": metadata(f"{spec.name}-init", spec, "init-job", options, _hook_annotations(options, -5)),
           "spec": job_spec(spec, options)}
    hooked = _hook_annotations(options, -10)
    return [config_map(spec, options, hooked), *files_config_maps(spec, options, hooked), doc]


def cronjob(spec: Spec, options: RenderOptions) -> list[Doc]:
    """The spec on a schedule, for clusters without a Prefect worker: one run at a time, none started late."""
    assert options.schedule, "the CLI requires --schedule"
    body: dict[str, Any] = {"schedule": options.schedule}
    if options.timezone:
        body["timeZone"] = options.timezone
    body.update({"concurrencyPolicy": "Forbid", "startingDeadlineSeconds": 300, "successfulJobsHistoryLimit": 3,
                 "failedJobsHistoryLimit": 3,
                 "jobTemplate": {"metadata": {"labels": labels(spec, "init-cronjob")},
                                 "spec": job_spec(spec, options)}})
    doc = {"apiVersion": "batch/v1", "kind": "CronJob",
           "metadata": metadata(f"{spec.name}-init", spec, "init-cronjob", options), "spec": body}
    return [config_map(spec, options), *files_config_maps(spec, options), doc]


def service_account(spec: Spec, options: RenderOptions) -> list[Doc]:
    """The identity Vault's Kubernetes auth checks: bind it to a Vault role (``bound_service_account_names``)."""
    name = options.service_account or spec.name
    return [{"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": metadata(name, spec, "identity", options), "automountServiceAccountToken": True}]
