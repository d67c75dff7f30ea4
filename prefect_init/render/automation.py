"""A Prefect automation that alerts on a failed init run of a spec (``deployments/automations/``).

Create it with ``prefect automation create --from-file deployments/automations/init-failed.json`` after putting
the id of a notification block (Slack, e-mail, PagerDuty: ``prefect block ls``) in place of the zero UUID.
"""

from __future__ import annotations

from typing import Any

PLACEHOLDER_BLOCK = "00000000-0000-0000-0000-000000000000"


def init_failed(spec_name: str) -> dict[str, Any]:
    return {
        "name": f"{spec_name}: init failed",
        "description": f"A prefect-init run of {spec_name} failed: which pod, which step, why.",
        "enabled": True,
        "trigger": {
            "type": "event", "posture": "Reactive", "threshold": 1, "within": 0,
            "expect": ["prefect-init.run.failed"],
            "match": {"prefect.resource.id": f"prefect-init.run.{spec_name}"},
        },
        "actions": [{
            "type": "send-notification", "block_document_id": PLACEHOLDER_BLOCK,
            "subject": "prefect-init: {{ event.resource['prefect.resource.name'] }} failed",
            "body": ("{{ event.resource['prefect-init.spec'] }} failed in pod "
                     "{{ event.resource.get('prefect-init.pod', '?') }} "
                     "(namespace {{ event.resource.get('prefect-init.namespace', '?') }}): step "
                     "{{ event.payload.failed_step }}: {{ event.payload.error }}"),
        }],
    }
