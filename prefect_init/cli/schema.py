"""``prefect-init schema``: the spec's JSON Schema, for an editor."""

from __future__ import annotations

import typer

from prefect_init.cli.common import app


@app.command(short_help="Print the spec's JSON Schema, for an editor's completion and checks as you type.")
def schema() -> None:
    """Print the JSON Schema of a spec file (draft 2020-12), made from the models this version reads. Save it
    (prefect-init schema > prefect-init.schema.json) and point an editor at it: a first line
    "# yaml-language-server: $schema=prefect-init.schema.json" in the spec, or the "yaml.schemas" setting. The
    schema checks keys, types and values; prefect-init check also checks the order (after:), the names and the
    variables."""
    from prefect_init.spec.schema import schema_text

    typer.echo(schema_text(), nl=False)

