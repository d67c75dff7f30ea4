"""The ``prefect-init`` command line.

Exit codes: 0 success; 1 a step failed (or the API refused, or the run was stopped); 2 the spec or the command
line is wrong. Errors are one line each, never a traceback.

Each command is a module of this package, registered on the one typer ``app`` (:mod:`prefect_init.cli.common`)
when it is imported, at the end of this file; a command imports what it needs when it runs, so that --help loads
no pydantic model and no prefect.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from prefect_init.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, app, err
from prefect_init.run.outcome import one_line

__all__ = ["EXIT_CODES", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "PLACEHOLDERS", "app", "command", "main"]

PLACEHOLDERS = {
    "spec": "SPEC", "kind": "KIND", "target": "TARGET", "only": "STEP", "status_file": "PATH", "base_dir": "PATH",
    "timeout": "DURATION", "image": "IMAGE", "app_image": "IMAGE", "namespace": "NAMESPACE", "pool": "POOL",
    "service_account": "NAME", "name": "NAME", "api_url": "URL", "hook": "helm|argo", "schedule": "CRON",
    "cron": "CRON", "timezone": "TZ", "env": "KEY=VALUE", "tag": "TAG", "limit": "N", "format": "text|json",
    "create_pool": "process|kubernetes", "step": "STEP", "into": "FILE", "workload": "KIND/NAME", "output": "DIR",
    "service": "NAME"}
"""Each parameter's placeholder in --help, in words (typer would print the Python type: <str>, <list[str]>)."""

EXIT_CODES = {
    "check": "0 the spec is valid (--online: every probe found what it needs); 1 --online: a probe found a problem "
             "(--strict: also a wait target not ready, a migration's lint finding); 2 the spec or the command line "
             "is wrong",
    "run": "0 every required step succeeded (an optional step may have failed, with a warning); 1 a step failed, "
           "the run was stopped (SIGTERM), or --require-api found no API; 2 the spec or the command line is wrong",
    "render": "0 the manifests were printed or written; 1 a file could not be written; 2 the spec, the command "
              "line or the --into file is wrong (nothing is written)",
    "deploy": "0 the deployment was created or updated; 1 the Prefect API is away or refused; 2 the spec or the "
              "command line is wrong, a credential given as a value, a work pool that does not exist",
    "trigger": "0 the run COMPLETED; 1 it FAILED, CRASHED, was CANCELLED or timed out (then it is cancelled), or the "
               "API refused; 2 an unknown deployment, no Prefect API, or the command line is wrong",
    "runs": "0 the runs were listed (none is no error); 1 the Prefect API refused; 2 no Prefect API, or the command "
            "line is wrong",
    "migrations": "0 every migration is applied or pending; 1 a file changed, went missing or failed, or the "
                  "database cannot be read; 2 the spec or the command line is wrong",
    "import": "0 the spec was written (notes on stderr); 2 a bad manifest, no or several workloads with "
              "initContainers (give --workload), every initContainer kept as it is (nothing to import; "
              "--replace-all), an unwritable -o",
    "schema": "0 always",
}
"""Every command's exit codes: the last paragraph of its --help (a test holds every command to one)."""


def _version(value: bool) -> None:
    if value:
        from prefect_init import __version__

        typer.echo(f"prefect-init {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """Kubernetes init pipelines as one declarative, observable, retrying Prefect flow: one YAML spec
    (docs/reference/spec.md), run in every pod as the initContainer, once per release as a Job, or on a schedule.

    The Prefect API is PREFECT_API_URL, else the active Prefect profile's (prefect config set
    PREFECT_API_URL=...); with none, or none that answers within 1.5 s, run is local (logs on stderr).

    Exit codes: 0 success; 1 a step failed, or the Prefect API refused or is required and away; 2 the spec or
    the command line is wrong (one line per problem, never a traceback); 130 interrupted.
    """
    from prefect_init.runtime.redaction import register_environment

    register_environment()  # VAULT_TOKEN, PREFECT_API_KEY: masked even where no step reads them


def command() -> Any:
    """The click command of ``app``, each parameter's placeholder in words (:data:`PLACEHOLDERS`), flags
    with none."""
    group = typer.main.get_command(app)

    def words(param: Any) -> None:
        if getattr(param, "is_flag", False):
            param.metavar = ""
        elif param.name and not param.metavar:  # an explicit metavar (LOCAL_DIR:PATH) is already words
            param.metavar = PLACEHOLDERS.get(param.name, param.name.upper())
        if param.param_type_name == "argument":  # its name says it: no type beside it
            param.display_type_rich = lambda ctx: None

    for name, sub in getattr(group, "commands", {}).items():
        sub.epilog = f"Exit codes: {EXIT_CODES[name]}."
    for sub in [group, *getattr(group, "commands", {}).values()]:
        for param in sub.params:
            words(param)
        get_help_option = sub.get_help_option

        def help_option(ctx: Any, get: Any = get_help_option) -> Any:
            option = get(ctx)
            if option is not None:
                words(option)
            return option

        sub.get_help_option = help_option
    return group


def main() -> None:
    try:
        command()()
    except KeyboardInterrupt:
        err("prefect-init: interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug of ours: one line, not a traceback (PREFECT_INIT_DEBUG=1 shows it)
        import os

        if os.environ.get("PREFECT_INIT_DEBUG"):
            raise
        err(f"prefect-init: internal error: {type(exc).__name__}: {one_line(str(exc))} (a bug: please report "
            "it; PREFECT_INIT_DEBUG=1 prints the traceback)")
        sys.exit(EXIT_FAILED)


# The commands, in the order --help lists them: importing a module registers its command on ``app``.
# isort: off
from prefect_init.cli import check  # noqa: E402, F401
from prefect_init.cli import run  # noqa: E402, F401
from prefect_init.cli import render  # noqa: E402, F401
from prefect_init.cli import deploy  # noqa: E402, F401
from prefect_init.cli import trigger  # noqa: E402, F401
from prefect_init.cli import runs  # noqa: E402, F401
from prefect_init.cli import migrations  # noqa: E402, F401
from prefect_init.cli import import_  # noqa: E402, F401
from prefect_init.cli import schema  # noqa: E402, F401
# isort: on
