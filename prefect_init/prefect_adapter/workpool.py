"""The base job template of a Prefect ``kubernetes`` work pool that runs specs as Jobs.

It is prefect-kubernetes' own default template (so the worker's variables, ``--image``, ``--env``,
``--namespace``, ``--service-account``, work unchanged), with:

- the pod and container ``securityContext`` of every other rendered pod (uid 10001, read-only root, ...);
- ``PREFECT_API_KEY`` from the Secret ``prefect-api-key`` (``secretKeyRef``, optional): never a literal;
- ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY=180``: the heartbeats ``deployments/automations/zombie-runs.json`` counts on,
  pinned (Prefect's default today); a deployment's ``--env`` or the worker's own setting of it wins (the worker
  drops a template entry whose name it sets itself);
- an emptyDir on ``medium: Memory`` at ``/secrets`` and one at ``/tmp`` (the root filesystem is read-only);
- ``command: [/usr/bin/env]``: the image's entrypoint is ``prefect-init``, and the worker passes
  ``prefect flow-run execute`` as the container's ``args``;
- ``parallelism`` and ``completions`` moved from the pod spec, where the default template has them and where
  a strict schema check refuses them, to the Job spec, where Kubernetes reads them.

Importing this module imports prefect (``render work-pool`` only).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from prefect_init.render.automation import HEARTBEAT_SECONDS
from prefect_init.render.env import API_KEY_SECRET
from prefect_init.render.options import RenderOptions
from prefect_init.render.pod import SECRETS_DIR, container_security_context, pod_security_context


def base_job_template(options: RenderOptions) -> dict[str, Any]:
    from prefect_kubernetes.worker import KubernetesWorker

    template = copy.deepcopy(KubernetesWorker.get_default_base_job_template())
    job = template["job_configuration"]["job_manifest"]["spec"]
    pod = job["template"]["spec"]
    for key in ("parallelism", "completions"):
        if key in pod:
            job[key] = pod.pop(key)
    pod["securityContext"] = pod_security_context()
    pod["volumes"] = [{"name": "secrets", "emptyDir": {"medium": "Memory"}}, {"name": "tmp", "emptyDir": {}}]
    container = pod["containers"][0]
    container["command"] = ["/usr/bin/env"]
    # a list (not "{{ env }}"): the worker puts the job variables' env in front of it
    container["env"] = [{"name": "PREFECT_API_KEY",
                         "valueFrom": {"secretKeyRef": {**API_KEY_SECRET, "optional": True}}},
                        {"name": "PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "value": str(HEARTBEAT_SECONDS)}]
    container["securityContext"] = container_security_context()
    container["volumeMounts"] = [{"name": "secrets", "mountPath": SECRETS_DIR}, {"name": "tmp", "mountPath": "/tmp"}]
    variables = template["variables"]["properties"]
    variables["image"]["default"] = options.image
    if options.namespace:
        variables["namespace"]["default"] = options.namespace
    if options.service_account:
        variables["service_account_name"]["default"] = options.service_account
    return template


def render_work_pool(options: RenderOptions) -> str:
    """``prefect-init render work-pool``: the template as JSON, for ``prefect work-pool create --base-job-template``."""
    return json.dumps(base_job_template(options), indent=2) + "\n"
