"""Prefect automations (``deployments/automations/``): one alerts on a failed init run of a spec, one marks a run
Crashed when its heartbeats stop (a zombie: its pod or process was lost and nothing reported it).

Create the first with ``prefect automation create --from-file deployments/automations/init-failed.json`` after
putting the id of a notification block (Slack, e-mail, PagerDuty: ``prefect block ls``) in place of the zero UUID;
the second as it is, ``prefect automation create --from-file deployments/automations/zombie-runs.json``.
"""

from __future__ import annotations

from typing import Any

PLACEHOLDER_BLOCK = "00000000-0000-0000-0000-000000000000"
HEARTBEAT_SECONDS = 180
"""``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` in seconds: Prefect's default (since 3.6.22; at least 30), the interval
at which a deployment's run (Prefect's engine) and a pod's run (prefect-init's mirror) send
``prefect.flow-run.heartbeat``, and what the work pool's template sets."""
ZOMBIE_WITHIN = 3 * HEARTBEAT_SECONDS
"""A run is a zombie after this long without a heartbeat (or any other event of it): three missed heartbeats, as
Prefect Cloud's managed "Unresponsive run detection" (9 minutes at the default)."""
FLOW_NAME = "prefect-init"
ZOMBIE_MESSAGE = ("prefect-init: this flow run's heartbeats stopped: the pod or process running it was lost (killed, "
                  "evicted, OOM-killed, its node gone) and nothing reported how the run ended")


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


def zombie_runs() -> dict[str, Any]:
    """Prefect's documented zombie detector ("Detect zombie flows"), restricted to prefect-init's runs: after each
    ``prefect.flow-run.heartbeat`` of a run of the flow ``prefect-init``, another event of that run (a heartbeat,
    or any state change: ``prefect.flow-run.*``) is expected within :data:`ZOMBIE_WITHIN` seconds; none comes, the
    run is set CRASHED. Not forced: a run that is already in a terminal state stays in it (the server refuses)."""
    return {
        "name": "prefect-init: mark a run Crashed when its heartbeats stop",
        "description": (f"A run of the flow {FLOW_NAME} sent no heartbeat (nor any other event) for {ZOMBIE_WITHIN} s: "
                        "its pod or process was lost. Self-hosted servers have no built-in zombie detection."),
        "enabled": True,
        "trigger": {
            "type": "event", "posture": "Proactive", "threshold": 1, "within": ZOMBIE_WITHIN,
            "after": ["prefect.flow-run.heartbeat"],
            "expect": ["prefect.flow-run.*"],
            "for_each": ["prefect.resource.id"],
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": FLOW_NAME},
        },
        "actions": [{"type": "change-flow-run-state", "state": "CRASHED", "force": False, "message": ZOMBIE_MESSAGE}],
    }
