"""The Prefect flow that runs a spec: the entrypoint of deployments (``prefect_init.flows.spec_flow:run_spec``).

A worker's ``prefect flow-run execute`` calls it inside Prefect's engine, which owns the flow run (its states and
heartbeats). The steps run as in every other mode, by the engine's scheduler and retry loop, and an observer
records a task run per step, with its retries and logs, and the summary artifact, under this flow run.
``prefect-init run`` does not go through here: it mirrors its run into Prefect without importing prefect.

Parameters: the spec's path or its text as written (``${VAR}`` unexpanded: resolved where the run executes),
``--only``, the status file and the base directory. No value read from the environment (a DSN, a token) is ever a
Prefect parameter.
"""

from __future__ import annotations

import threading
from typing import Any

from prefect import flow, get_run_logger
from prefect.context import FlowRunContext
from prefect.runtime import flow_run
from prefect.settings import get_current_settings
from prefect.states import Completed, Failed

from prefect_init.errors import SpecError, SpecProblem
from prefect_init.prefect_adapter.mirror import CLOSE_BUDGET, api_log_level
from prefect_init.prefect_adapter.mirror_reporter import ObservingReporter
from prefect_init.prefect_adapter.observer import Observer
from prefect_init.prefect_adapter.rest import PrefectRest
from prefect_init.prefect_adapter.trigger import deployment_run_name, spec_name
from prefect_init.run.engine import LocalExecutor, install_sigterm, run_spec_with
from prefect_init.run.identity import Identity
from prefect_init.run.outcome import FAILED, publish
from prefect_init.run.reporter import PlainReporter
from prefect_init.runtime.redaction import install_logging_filter, redact, register_environment
from prefect_init.spec.load import load_spec, parse_spec
from prefect_init.spec.model import Spec
from prefect_init.spec.plan import build_plan

CANCEL = threading.Event()
"""Set on SIGTERM: running steps stop, nothing new starts, the status is still written."""

SPEC_TEXT_FILE = "<deployment spec_text>"
"""How errors name a spec given as text (a deployment's parameter)."""


def _flow_run_name() -> str:
    """``<spec name>/<the run's own name>`` for a run of a deployment (``myapp/cobalt-squirrel``: two runs told
    apart, and a name given by ``trigger``, already ``myapp/...``, kept as it is); outside a deployment the
    spec's name, with the pod's (:meth:`Identity.run_name`). The spec is read cheaply; the flow validates it."""
    text = flow_run.parameters.get("spec_text")
    if text is None:
        try:
            with open(flow_run.parameters["spec_path"], encoding="utf-8") as handle:
                text = handle.read()
        except Exception:  # no file here: the name falls back, the flow reports the spec itself
            text = None
    name = spec_name(text, "prefect-init")
    context = FlowRunContext.get()  # the run as the engine read it: no call to the API
    run = context.flow_run if context is not None else None
    if run is not None and run.deployment_id is not None:
        return deployment_run_name(name, run.name)
    return Identity.from_env().run_name(name)


def _task_run_tags(spec: Spec) -> list[str]:
    """The tags of every task run: the flow run's own (the deployment's, ``trigger --tag``), as Prefect's engine
    gives a flow's task runs, and those of any other run of the spec (``prefect-init``, ``spec:NAME``, the pod's)."""
    context = FlowRunContext.get()
    own = list(context.flow_run.tags) if context is not None and context.flow_run is not None else []
    return list(dict.fromkeys([*own, *Identity.from_env().tags(spec.name, spec.tags)]))


def _load(spec_path: str | None, spec_text: str | None, base_dir: str | None) -> Spec:
    if (spec_path is None) == (spec_text is None):
        raise SpecError([SpecProblem("prefect-init", None, "", "give exactly one of spec_path and spec_text")])
    if spec_text is not None:
        return parse_spec(spec_text, SPEC_TEXT_FILE, base_dir=base_dir)
    assert spec_path is not None
    return load_spec(spec_path, base_dir=base_dir)


def _observer(spec: Spec) -> Observer:
    settings = get_current_settings()
    headers = {}
    if settings.api.key:
        headers["Authorization"] = f"Bearer {settings.api.key.get_secret_value()}"
    elif settings.api.auth_string:
        import base64

        token = base64.b64encode(settings.api.auth_string.get_secret_value().encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    level, warning = api_log_level()
    if warning:
        get_run_logger().warning(warning)
    return Observer(PrefectRest(str(settings.api.url), headers), spec.name, build_plan(spec.steps).needs,
                    flow_run_id=str(flow_run.id), identity=Identity.from_env(), log_level=level)


@flow(name="prefect-init", flow_run_name=_flow_run_name, persist_result=False, log_prints=False,
      validate_parameters=True)
def run_spec(spec_path: str | None = None, only: list[str] | None = None, status_file: str | None = None,
             base_dir: str | None = None, spec_text: str | None = None) -> Any:
    """Run a prefect-init spec: the file at ``spec_path`` (a path inside the image or a mounted ConfigMap), or
    ``spec_text``, the spec as written (what ``prefect-init deploy`` stores in a deployment).

    Relative paths in the spec resolve against ``base_dir``, by default the spec file's directory (the working
    directory for ``spec_text``).

    Every step is a task run named after the step; a markdown artifact ``prefect-init-<name>`` tables the
    outcome; the flow run fails when a required step fails (or is skipped). A step with ``optional: true`` that
    fails leaves its task run Failed and the flow run Completed, with a message naming it.
    """
    install_logging_filter()
    register_environment()  # VAULT_TOKEN, PREFECT_API_KEY: masked even where no step reads them
    install_sigterm(CANCEL)
    logger = get_run_logger()
    try:
        spec = _load(spec_path, spec_text, base_dir)
    except SpecError as exc:
        for problem in exc.problems:
            logger.error(str(problem))
        return Failed(message=redact(f"invalid spec: {exc.problems[0]}"))
    observer = _observer(spec)
    observer.start({}, _task_run_tags(spec))
    local = PlainReporter()
    reporter = ObservingReporter(local, observer, spec)
    outcome = run_spec_with(spec, LocalExecutor(spec, reporter, CANCEL), reporter, CANCEL, only)
    status_path = (spec.resolve(status_file) if status_file else
                   spec.resolve(spec.status_file) if spec.status_file else None)
    for line in publish(outcome, status_path):
        logger.warning(line)
    observer.finish(outcome)
    warning = observer.close(CLOSE_BUDGET)
    if warning:
        logger.warning(warning)
    if outcome.status == FAILED:
        return Failed(message=outcome.reason())
    if outcome.optional_failures():  # Completed, and the message says which optional steps failed
        return Completed(message=outcome.completed_message(), data=outcome.to_dict())
    return outcome.to_dict()
