"""``prefect-init trigger``: run a deployment and wait for its end, for CI/CD and Helm or Argo CD hooks.

One line per state change; on failure, every failed step with its attempts and its error, so a CI log or a
hook's log says what broke. Exit 0 COMPLETED; 1 FAILED, CRASHED, CANCELLED or timed out (then the run is
cancelled); 2 an unknown deployment, no API, or bad flags.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect_init.prefect_adapter.client import FLOW_NAME, CommandError, client, ui_url
from prefect_init.run.outcome import one_line

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.client.orchestration import SyncPrefectClient

POLL = 0.5
CANCEL_WAIT = 15.0
"""After a timeout, how long to wait for the run to reach CANCELLED before saying it was asked to."""
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def deployment_name(target: str) -> str:
    """``prefect-init/myapp`` as it is; ``myapp`` or a spec file -> ``prefect-init/<its name>``."""
    if "/" in target and not target.endswith((".yaml", ".yml")) and not Path(target).is_file():
        return target
    if Path(target).is_file():
        from prefect_init.spec.load import load_spec

        return f"{FLOW_NAME}/{load_spec(target, defer_unset=True).name}"
    return f"{FLOW_NAME}/{target}"


def deployment_run_name(spec_name: str, run_name: str | None) -> str:
    """The name a run of a deployment keeps: ``<spec name>/<its own name>`` (``myapp/cobalt-squirrel``), so two
    runs are told apart in the UI, in ``runs`` and in the logs; a name already of that form (``trigger``'s) is
    kept as it is."""
    if not run_name:
        return spec_name
    return run_name if run_name.startswith(f"{spec_name}/") else f"{spec_name}/{run_name}"


def spec_name(text: str | None, fallback: str) -> str:
    """The ``name`` of a spec given as text (what the flow names its runs after), read cheaply, without
    validating the spec; ``fallback`` when it cannot be read."""
    import yaml

    try:
        return str(yaml.safe_load(text or "").get("name") or fallback)
    except Exception:
        return fallback


def failed_steps(prefect: SyncPrefectClient, flow_run_id: UUID) -> list[str]:
    """``step NAME failed after N attempts: ERROR`` for each failed task run of the flow run."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    runs = prefect.read_task_runs(
        flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
        task_run_filter=TaskRunFilter(state=TaskRunFilterState(
            type=TaskRunFilterStateType(any_=[StateType.FAILED, StateType.CRASHED]))))
    out = []
    for run in sorted(runs, key=lambda r: str(r.start_time or r.expected_start_time or "")):
        message = (run.state.message if run.state else "") or "failed"  # the step's error, as the observer set it
        attempts = max(1, run.run_count)
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        out.append(f"step {run.name} failed{tries}: {one_line(message, 400)}")
    return out


def trigger(target: str, env: dict[str, str], tags: list[str], timeout: float | None, wait: bool,
            say: Callable[[str], None]) -> int:
    from prefect.client.schemas.objects import StateType
    from prefect.exceptions import ObjectNotFound
    from prefect.states import Cancelling

    from prefect_init.prefect_adapter.deploy import refuse_credential_env

    name = deployment_name(target)
    local = Path(target).read_text(encoding="utf-8") if name != target and Path(target).is_file() else ""
    refuse_credential_env(local, env, "a flow run")  # by name and value, and what a spec file reads: before the API
    with client(no_api_code=2) as prefect:
        try:
            deployment = prefect.read_deployment_by_name(name)
        except ObjectNotFound:
            raise CommandError(f"no deployment {name!r} (create it with `prefect-init deploy SPEC --pool POOL`)",
                               2) from None
        spec_text = (deployment.parameters or {}).get("spec_text")
        refuse_credential_env(spec_text if isinstance(spec_text, str) else "", env, "a flow run")
        from prefect.utilities.names import generate_slug

        # the run's name from the start, the one the flow keeps (deployment_run_name): printed here, found later
        run_name = deployment_run_name(spec_name((deployment.parameters or {}).get("spec_text"), deployment.name),
                                       generate_slug(2))
        run = prefect.create_flow_run_from_deployment(
            deployment.id, name=run_name, tags=tags or None, job_variables={"env": env} if env else None)
        say(f"{name}: flow run {run.name} {ui_url(f'runs/flow-run/{run.id}')}")
        if not wait:
            return 0
        started = time.monotonic()
        last: str | None = None
        while True:
            run = prefect.read_flow_run(run.id)
            state: Any = run.state
            label = f"{state.type.value} ({state.name})" if state and state.name.upper() != state.type.value \
                else (state.type.value if state else "PENDING")
            if label != last:
                say(f"{time.strftime('%H:%M:%S')} {label}")
                last = label
            if state is not None and state.type.value in FINAL:
                break
            if timeout is not None and time.monotonic() - started > timeout:
                # as Prefect's own `flow-run cancel`: the server turns a run no worker has yet into Cancelled at
                # once; one a worker is starting or running gets Cancelling, and its worker stops it
                prefect.set_flow_run_state(run.id, Cancelling())
                say(f"timed out after {timeout:g}s: cancelling the run")
                end = time.monotonic() + CANCEL_WAIT
                while time.monotonic() < end:
                    current = prefect.read_flow_run(run.id).state
                    if current is not None and current.type.value in FINAL:
                        say(f"{time.strftime('%H:%M:%S')} {current.type.value}")
                        break
                    time.sleep(POLL)
                return 1
            time.sleep(POLL)
        if state.type == StateType.COMPLETED:
            return 0
        steps = failed_steps(prefect, run.id)
        for line in steps:
            say(f"{name}: {line}")
        if not steps:  # a bad spec, a crash, a cancellation: the run's own message says why
            say(f"{name}: {state.type.value}: {one_line(state.message or 'no message', 400)}")
        return 1
