"""``prefect-init deploy``: a spec as a Prefect deployment (needs prefect)."""

from __future__ import annotations

from typing import Annotated

import typer

from prefect_init.cli.common import EXIT_USAGE, app, err, load, needs_prefect, one_line_failures, pairs


@app.command(short_help='Register a spec as a Prefect deployment (a worker runs it).')
def deploy(
    spec: Annotated[str, typer.Argument(help="The spec file ('-' for standard input).")],
    pool: Annotated[str, typer.Option(help="The Prefect work pool whose workers run the spec.")],
    name: Annotated[str | None, typer.Option(help="The deployment's name (default: the spec's name).")] = None,
    cron: Annotated[list[str] | None, typer.Option(help="A cron schedule (repeatable); replaces the schedules.")
                    ] = None,
    timezone: Annotated[str | None, typer.Option(help="The schedules' time zone (default UTC).")] = None,
    image: Annotated[str | None, typer.Option(help="kubernetes pool: the prefect-init image.")] = None,
    namespace: Annotated[str | None, typer.Option(help="kubernetes pool: the Jobs' namespace.")] = None,
    service_account: Annotated[str | None, typer.Option(help="kubernetes pool: the Jobs' ServiceAccount.")] = None,
    env: Annotated[list[str] | None, typer.Option(help="KEY=VALUE in the run's environment (repeatable).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag of the deployment (repeatable).")] = None,
    base_dir: Annotated[str | None, typer.Option(help="Where the spec's relative paths resolve, in the run.")
                        ] = None,
    create_pool: Annotated[str | None, typer.Option(help="Create a missing pool: 'process' or 'kubernetes'.")
                           ] = None,
) -> None:
    """Register SPEC (its text, unexpanded) as the deployment prefect-init/NAME of the spec flow."""
    needs_prefect("deploy")
    from prefect_init.prefect_adapter.deploy import DeployRequest
    from prefect_init.prefect_adapter.deploy import deploy as deploy_spec

    if create_pool not in (None, "process", "kubernetes"):
        err(f"--create-pool is 'process' or 'kubernetes', not {create_pool!r}")
        raise typer.Exit(EXIT_USAGE)
    variables = pairs(env, "--env")
    loaded = load(spec, defer_unset=True)
    request = DeployRequest(spec=loaded, pool=pool, name=name, crons=list(cron or []), timezone=timezone,
                            image=image, namespace=namespace, service_account=service_account, env=variables,
                            tags=list(tag or []), base_dir=base_dir, create_pool=create_pool)
    with one_line_failures():
        deployed = deploy_spec(request)
    if deployed.created_pool:
        typer.echo(f"created work pool {pool!r} ({create_pool})")
    typer.echo(f"deployment {deployed.name}: {deployed.url}")
    typer.echo(f"schedules: {', '.join(deployed.schedules) if deployed.schedules else 'none'}")
    typer.echo(f"next: a worker must serve the pool (prefect worker start --pool {pool}, with the same "
               f"PREFECT_API_URL); then: prefect-init trigger {deployed.name}")

