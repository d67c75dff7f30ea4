"""``prefect-init import``: a workload's initContainers as a spec."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from prefect_init.cli.common import EXIT_USAGE, app, err


@app.command("import", short_help="A workload's initContainers (a manifest, helm template output) as a spec.")
def import_(
    manifest: Annotated[str, typer.Argument(help="A manifest or `helm template` output, several documents "
                                            "allowed ('-' for standard input).")],
    workload: Annotated[str | None, typer.Option("--workload", help="The workload, as KIND/NAME (Deployment/web); "
                                                 "default: the only one with initContainers.")] = None,
    spec: Annotated[str | None, typer.Option("-o", "--output", help="Write the spec here (atomically); default: "
                                             "standard output.")] = None,
    replace_all: Annotated[bool, typer.Option("--replace-all", help="Make steps of the initContainers only their "
                                              "own image can run too (privileged, no command, args only, a program "
                                              "of that image) instead of keeping them.")] = False,
) -> None:
    """Turn the initContainers of one workload (Deployment, StatefulSet, DaemonSet, Job, CronJob, Pod) into a
    spec, in their order: waits (nc -z, pg_isready, nslookup, curl/wget in a loop, redis-cli ping, [ -f ]) become
    one wait step, mkdir/chmod/chown a files step, wget -O/curl -o of a document a config step, git clone a git
    step, vault kv get -field a vault step; what is not understood is a command step that runs the script as
    written, in the init image. Literal credentials become ${VARIABLES}, never written. Notes on stderr: the
    variables to provide, the programs the init image lacks and a Dockerfile that adds them. A container only its
    own image can run is kept as it is ("kept: runs TOOL from its own image"; render --into leaves it in place);
    --replace-all makes a step of it all the same. Exit 0; 2 for a bad manifest, no or several workloads with
    initContainers (give --workload), every initContainer kept, an unwritable -o."""
    from prefect_init.importer import ImportProblem, import_workload

    try:
        text = sys.stdin.read() if manifest == "-" else Path(manifest).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        err(f"import: {manifest}: cannot read it: {reason}")
        raise typer.Exit(EXIT_USAGE) from None
    try:
        imported = import_workload(text, workload, "standard input" if manifest == "-" else manifest,
                                   replace_all=replace_all)
    except ImportProblem as exc:
        err(f"import: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    if spec is not None:
        from prefect_init.errors import StepError
        from prefect_init.runtime.atomic import write_atomic

        try:
            write_atomic(spec, imported.spec_text)
        except StepError as exc:
            err(f"import: -o {exc}")
            raise typer.Exit(EXIT_USAGE) from None
    else:
        sys.stdout.write(imported.spec_text)
    for line in imported.notes:
        err(line)
    kind, name = imported.workload
    err(f"{'wrote ' + spec if spec else 'the spec is on stdout'}: {kind}/{name}, initContainers "
        f"{', '.join(imported.init_containers)}; next: prefect-init check {spec or 'SPEC'} --unset-ok")

