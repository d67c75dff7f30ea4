"""The Prefect flow that runs a spec: one task run per step, named after the step.

Used by ``prefect-init run`` when the Prefect API answers, and as the entrypoint of deployments
(``prefect_init.flows.spec_flow:run_spec``). Its parameters are the spec's path or, for a deployment, the spec's
text as written (``${VAR}`` unexpanded: resolved where the run executes), ``--only`` and the status file: no value
read from the environment (a DSN, a token) is ever a Prefect parameter.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.runtime import flow_run
from prefect.states import Failed

from prefect_init.context import RunContext
from prefect_init.engine import install_sigterm, retry_delays, run_attempt, run_spec_with
from prefect_init.errors import RetryableError, SpecError, SpecProblem, StepError, StepTimeout
from prefect_init.outcome import FAILED, SUCCEEDED, StepOutcome, publish
from prefect_init.redaction import install_logging_filter, redact
from prefect_init.spec import Policy, Spec, StepBase, load_spec, parse_spec
from prefect_init.tasks._common import TASK_OPTIONS, RedactingLogger

CANCEL = threading.Event()
"""Set on SIGTERM: running steps stop, nothing new starts, the status is still written."""


@dataclass
class _StepRun:
    """State of one step across its Prefect attempts (Prefect re-calls the task function per retry)."""

    step: StepBase
    policy: Policy
    spec: Spec
    deadline: float | None = None
    attempts: int = 0
    last_error: StepError | None = None


_ACTIVE: dict[str, _StepRun] = {}


@task(**TASK_OPTIONS)
def run_step(key: str) -> str:
    """One attempt of one step of the running spec (``key`` names it in this process)."""
    state = _ACTIVE[key]  # Prefect runs a task's attempts one after another: no lock needed
    state.attempts += 1
    if state.deadline is None:
        state.deadline = time.monotonic() + state.policy.timeout
    ctx = RunContext(state.step.name, state.deadline, state.policy.timeout, CANCEL,
                     RedactingLogger(get_run_logger()), state.spec.base_dir, state.attempts)
    try:
        return run_attempt(state.step, ctx)
    except StepError as exc:
        state.last_error = exc
        delays = retry_delays(state.policy)
        if isinstance(exc, RetryableError) and exc.retry_after and state.attempts <= len(delays):
            # Prefect's retry delays are fixed up front: wait out what the server asked for beyond them
            extra = exc.retry_after - delays[state.attempts - 1]
            if extra > 0:
                CANCEL.wait(min(extra, max(0.0, state.deadline - time.monotonic())))
        raise


def _should_retry(key: str) -> bool:
    state = _ACTIVE[key]
    error = state.last_error
    if error is None or not error.retryable or CANCEL.is_set():
        return False
    delays = retry_delays(state.policy)
    next_delay = delays[min(state.attempts, len(delays)) - 1] if delays else 0.0
    if state.deadline is not None and time.monotonic() + next_delay >= state.deadline:
        state.last_error = StepTimeout(f"{error} (deadline reached after {state.attempts} attempts)")
        return False
    return True


@dataclass
class PrefectExecutor:
    """Runs each step as a Prefect task run named after the step; Prefect's retries do the retrying."""

    spec: Spec

    def execute(self, step: StepBase, policy: Policy) -> StepOutcome:
        key = uuid.uuid4().hex
        state = _ACTIVE[key] = _StepRun(step, policy, self.spec)
        started = time.monotonic()
        delays = retry_delays(policy)
        configured = run_step.with_options(
            name=step.name, task_run_name=step.name, retries=policy.retries,
            retry_delay_seconds=delays or 0, retry_jitter_factor=0.2,
            retry_condition_fn=lambda task, task_run, st: _should_retry(key),
        )
        try:
            final = configured(key, return_state=True)
        finally:
            del _ACTIVE[key]
        duration = time.monotonic() - started
        if final.is_completed():
            return StepOutcome(step.name, step.kind, SUCCEEDED, state.attempts, duration)
        error = str(state.last_error) if state.last_error else redact(final.message or "failed")
        return StepOutcome(step.name, step.kind, FAILED, state.attempts, duration, error)


@dataclass
class _FlowReporter:
    logger: Any

    def step_started(self, name: str) -> None:
        self.logger.info(f"step {name}: started")

    def step_retrying(self, name: str, attempt: int, delay: float, error: str) -> None:
        self.logger.warning(redact(f"step {name}: attempt {attempt} failed: {error}"))

    def step_finished(self, outcome: StepOutcome) -> None:
        tries = f" after {outcome.attempts} attempts" if outcome.attempts > 1 else ""
        text = f"step {outcome.name}: {outcome.status}{tries}" + (f": {outcome.error}" if outcome.error else "")
        (self.logger.info if outcome.status == SUCCEEDED else self.logger.warning)(redact(text))

    def logger_for(self, name: str) -> Any:
        return self.logger


SPEC_TEXT_FILE = "<deployment spec_text>"
"""How errors name a spec given as text (a deployment's parameter)."""


def _flow_run_name() -> str:
    """The spec's ``name`` (read cheaply; the flow validates the spec properly)."""
    try:
        text = flow_run.parameters.get("spec_text")
        if text is None:
            with open(flow_run.parameters["spec_path"], encoding="utf-8") as handle:
                text = handle.read()
        name = yaml.safe_load(text).get("name")
        return str(name) if name else "prefect-init"
    except Exception:
        return "prefect-init"


def _load(spec_path: str | None, spec_text: str | None, base_dir: str | None) -> Spec:
    if (spec_path is None) == (spec_text is None):
        raise SpecError([SpecProblem("prefect-init", None, "", "give exactly one of spec_path and spec_text")])
    if spec_text is not None:
        return parse_spec(spec_text, SPEC_TEXT_FILE, base_dir=base_dir)
    assert spec_path is not None
    return load_spec(spec_path, base_dir=base_dir)


@flow(name="prefect-init", flow_run_name=_flow_run_name, persist_result=False, log_prints=False,
      validate_parameters=True)
def run_spec(spec_path: str | None = None, only: list[str] | None = None, status_file: str | None = None,
             base_dir: str | None = None, spec_text: str | None = None) -> Any:
    """Run a prefect-init spec: the file at ``spec_path`` (a path inside the image or a mounted ConfigMap), or
    ``spec_text``, the spec as written (what ``prefect-init deploy`` stores in a deployment).

    Relative paths in the spec resolve against ``base_dir``, by default the spec file's directory (the working
    directory for ``spec_text``).

    Every step is a task run named after the step; a markdown artifact ``prefect-init-<name>`` tables the
    outcome; the flow run fails when a step fails.
    """
    install_logging_filter()
    install_sigterm(CANCEL)
    logger = get_run_logger()
    try:
        spec = _load(spec_path, spec_text, base_dir)
    except SpecError as exc:
        for problem in exc.problems:
            logger.error(str(problem))
        return Failed(message=redact(f"invalid spec: {exc.problems[0]}"))
    outcome = run_spec_with(spec, PrefectExecutor(spec), _FlowReporter(logger), CANCEL, only)
    status_path = (spec.resolve(status_file) if status_file else
                   spec.resolve(spec.status_file) if spec.status_file else None)
    publish(outcome, status_path)
    create_markdown_artifact(markdown=outcome.markdown(), key=f"prefect-init-{spec.name}",
                             description=f"prefect-init run of {spec.name}: {outcome.status}")
    if outcome.status == FAILED:
        return Failed(message=outcome.reason())
    return outcome.to_dict()

