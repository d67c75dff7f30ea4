"""``prefect-init runs``: the latest runs from the Prefect API (needs prefect)."""

from __future__ import annotations

from typing import Annotated

import typer

from prefect_init.cli.common import EXIT_USAGE, app, err, needs_prefect, one_line_failures


@app.command(short_help='The latest runs, newest first, from the Prefect API.')
def runs(
    spec: Annotated[str | None, typer.Argument(help="A spec name or file: only its runs.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only runs with this tag (e.g. namespace:prod).")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only FAILED and CRASHED runs.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many runs, newest first.", min=1, max=200)] = 20,
    scheduled: Annotated[bool, typer.Option("--scheduled", help="Also runs that have not started (a schedule's "
                                            "next runs), by expected start.")] = False,
) -> None:
    """The latest runs from the Prefect API: spec, pod, state, failed step, started, duration, URL."""
    needs_prefect("runs")
    from prefect_init.prefect_adapter.runs import list_runs, spec_tag, table

    if spec and tag:
        err("runs: give a SPEC or --tag, not both")
        raise typer.Exit(EXIT_USAGE)
    with one_line_failures():
        rows = list_runs(spec_tag(spec) if spec else tag, failed, limit, scheduled)
    typer.echo(table(rows) if rows else "no runs")

