"""``prefect-init migrations``: every migration of a migrate step and its state, read-only."""

from __future__ import annotations

from typing import Annotated

import typer

from prefect_init.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, app, err, load
from prefect_init.errors import StepError


@app.command(short_help='Every migration of a migrate step and its state, read-only.')
def migrations(
    spec: Annotated[str, typer.Argument(help="The spec file ('-' for standard input).")],
    step: Annotated[str | None, typer.Option(help="The migrate step (when the spec has several).")] = None,
    format: Annotated[str, typer.Option("--format", help="text (a table) or json.")] = "text",
) -> None:
    """Every migration of a migrate step with its state (applied, pending, baseline, adopted, changed, missing,
    failed), read-only: nothing is created or applied. Exit 1 when a file changed, went missing or failed."""
    if format not in ("text", "table", "json"):  # table: the word of earlier releases
        err(f"migrations: --format is 'text' or 'json', not {format!r}")
        raise typer.Exit(EXIT_USAGE)
    from prefect_init.kinds.migrate.step import Step as MigrateStep

    loaded = load(spec)
    candidates = [s for s in loaded.steps if isinstance(s, MigrateStep) and s.migrate.dir]
    chosen = [s for s in candidates if s.name == step] if step else candidates
    names = ", ".join(s.name for s in candidates) or "none with dir:"
    if step and not chosen:
        err(f"migrations: no migrate step {step!r} (migrate steps: {names})")
        raise typer.Exit(EXIT_USAGE)
    if len(chosen) != 1:
        err(f"migrations: {'several migrate steps: give --step' if chosen else 'no migrate step with dir:'} "
            f"(migrate steps: {names})")
        raise typer.Exit(EXIT_USAGE)
    from prefect_init.kinds.migrate.history import load_dir
    from prefect_init.kinds.migrate.status import PROBLEMS, as_json, as_table, entries, history_rows
    from prefect_init.runtime.redaction import redact

    assert isinstance(chosen[0], MigrateStep)
    settings = chosen[0].migrate
    try:
        import psycopg

        versioned, repeatable = load_dir(loaded.resolve(settings.dir or ""))
        with psycopg.connect(settings.database, autocommit=True, connect_timeout=10,
                             application_name="prefect-init-migrations") as conn:
            conn.execute("SET default_transaction_read_only = on")
            rows = history_rows(conn, settings.identifier()) or []
    except StepError as exc:
        err(f"migrations: {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        err(redact(f"migrations: {settings.database}: {first}"))
        raise typer.Exit(EXIT_FAILED) from None
    items = entries(versioned, repeatable, rows)
    typer.echo(as_json(items) if format == "json" else as_table(items))
    raise typer.Exit(EXIT_FAILED if any(e.state in PROBLEMS for e in items) else EXIT_OK)

