"""``prefect-init trigger``: run a deployment now and follow it (needs prefect)."""

from __future__ import annotations

from typing import Annotated

import typer

from prefect_init.cli.common import app, duration, needs_prefect, one_line_failures, pairs


@app.command(short_help='Run a deployment now and follow it (CI/CD, before a rollout).')
def trigger(
    target: Annotated[str, typer.Argument(help="A deployment (prefect-init/myapp), a spec name or a spec file.")],
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE for this run only (repeatable).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag of this flow run (repeatable).")] = None,
    timeout: Annotated[str | None, typer.Option(help="Cancel the run and exit 1 after this long (e.g. 10m; "
                                                "default: wait as long as the run takes).")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the run's end (default).")] = True,
) -> None:
    """Run a deployment and wait: one line per state change, and the failed steps if it fails."""
    needs_prefect("trigger")
    from prefect_init.prefect_adapter.trigger import trigger as trigger_run

    seconds = duration("--timeout", timeout) if timeout is not None else None
    variables = pairs(env, "--env")
    with one_line_failures():
        code = trigger_run(target, variables, list(tag or []), seconds, wait, typer.echo)
    raise typer.Exit(code)

