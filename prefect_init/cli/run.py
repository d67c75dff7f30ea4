"""``prefect-init run``: the initContainer's entrypoint; mirrored into Prefect when its API answers."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from prefect_init.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, app, err, load
from prefect_init.run.outcome import one_line

if TYPE_CHECKING:
    from prefect_init.prefect_adapter.observer import Observer
    from prefect_init.spec.model import Spec


def _api(require_api: bool) -> str | None:
    """The Prefect API URL to mirror the run into, or None for a local run."""
    from prefect_init.prefect_adapter.discovery import api_answers, configured_api_url

    url = configured_api_url()
    if url is None:
        if require_api:
            err("--require-api: no Prefect API configured (set PREFECT_API_URL)")
            raise typer.Exit(EXIT_FAILED)
        return None
    if api_answers(url):
        return url
    if require_api:
        err(f"--require-api: the Prefect API at {url} does not answer")
        raise typer.Exit(EXIT_FAILED)
    err(f"warning: the Prefect API at {url} does not answer; running locally (logs go to stderr only)")
    return None


@app.command(short_help="Run a spec: the initContainer's entrypoint (exit 0, 1 or 2).")
def run(
    spec: Annotated[str, typer.Argument(help="The spec file ('-' for standard input).")],
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this step (repeatable).")] = None,
    status_file: Annotated[str | None, typer.Option(help="Write the outcome here (overrides the spec).")] = None,
    require_api: Annotated[bool, typer.Option(help="Fail (exit 1) rather than run without the Prefect API.")
                           ] = False,
    local: Annotated[bool, typer.Option("--local", help="Run locally even if a Prefect API is configured.")] = False,
) -> None:
    """Run SPEC: every step, at the same time where after: allows, each with its retries and timeout; mirrored
    into Prefect as a flow run when the Prefect API answers. Exit 0 when every required step succeeded (an
    optional: true step may fail with a warning), 1 when one failed (or the run was stopped), 2 when the spec is
    wrong."""
    loaded = load(spec)
    names = {s.name for s in loaded.steps}
    unknown = [n for n in only or [] if n not in names]
    if unknown:
        err(f"--only: unknown step {', '.join(map(repr, unknown))} (steps: {', '.join(sorted(names))})")
        raise typer.Exit(EXIT_USAGE)
    # --status-file is relative to the shell's directory; the spec's status_file to the spec's directory.
    status_path = Path(status_file).absolute() if status_file else (
        loaded.resolve(loaded.status_file) if loaded.status_file else None)
    url = None if local else _api(require_api)
    observer = None
    if url is not None:
        from prefect_init.prefect_adapter.mirror import start_observer

        observer, why = start_observer(loaded, url, only, status_path, err)
        if observer is None:
            if require_api:
                err(f"--require-api: {why}")
                raise typer.Exit(EXIT_FAILED)
            err(f"warning: {why}; running locally (logs go to stderr only)")
        else:  # where the run is, as Prefect's engine says "View at"
            from prefect_init.prefect_adapter.discovery import ui_url

            err(f"prefect-init: {loaded.name}: flow run {observer.run_name}: "
                f"{ui_url(url, f'runs/flow-run/{observer.flow_run_id}')}")
    started = time.monotonic()
    ok, reason = _run(loaded, only, status_path, observer)
    from prefect_init.run.outcome import ALL_SUCCEEDED
    from prefect_init.spec.durations import format_duration
    from prefect_init.words import plural

    if not ok or reason != ALL_SUCCEEDED:  # one closing line (a failure, or optional steps that failed); the
        err(f"prefect-init: {loaded.name}: {one_line(reason or 'failed')}")  # full reason is in the log above
    else:  # a success closes too: the spec, how many steps, how long
        ran = len(only) if only else len(loaded.steps)
        took = format_duration(round(time.monotonic() - started, 1))
        err(f"prefect-init: {loaded.name}: {plural(ran, 'step')} succeeded in {took}")
    from prefect_init.run.engine import exit_if_steps_left_running

    exit_if_steps_left_running(EXIT_OK if ok else EXIT_FAILED)  # a step's thread that never stops holds no exit
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


def _run(loaded: Spec, only: list[str] | None, status_path: Path | None, observer: Observer | None
         ) -> tuple[bool, str]:
    """Run the steps (the same way in both modes); with an observer, mirror them into Prefect."""
    from prefect_init.run.engine import LocalExecutor, Reporter, install_sigterm, run_spec_with
    from prefect_init.run.outcome import SUCCEEDED, publish
    from prefect_init.run.reporter import LiveReporter, PlainReporter

    cancel = threading.Event()
    install_sigterm(cancel)
    local = LiveReporter([s.name for s in loaded.steps]) if sys.stderr.isatty() else PlainReporter()
    reporter: Reporter = local
    if observer is not None:
        from prefect_init.prefect_adapter.mirror_reporter import ObservingReporter

        reporter = ObservingReporter(local, observer, loaded)
    try:
        outcome = run_spec_with(loaded, LocalExecutor(loaded, reporter, cancel), reporter, cancel, only)
    finally:
        local.close()
    for line in publish(outcome, status_path):
        err(line)
    if observer is not None:
        from prefect_init.prefect_adapter.mirror import CLOSE_BUDGET, CLOSE_BUDGET_TERMINATED

        observer.finish(outcome)
        warning = observer.close(CLOSE_BUDGET_TERMINATED if cancel.is_set() else CLOSE_BUDGET)
        if warning:
            err(warning)
    return outcome.status == SUCCEEDED, outcome.reason()

