"""The ``prefect-init`` command line.

Exit codes: 0 success; 1 a step failed (or the API refused, or the run was stopped); 2 the spec or the command
line is wrong. Errors are one line each, never a traceback.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from .errors import SpecError
from .outcome import one_line
from .spec import Spec, load_spec

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Kubernetes init pipelines as one declarative, observable, retrying Prefect flow.")

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def _load(path: str) -> Spec:
    try:
        return load_spec(path)
    except SpecError as exc:
        for problem in exc.problems:
            _err(str(problem))
        raise typer.Exit(EXIT_USAGE) from None


@app.command()
def check(spec: Annotated[str, typer.Argument(help="The spec file ('-' for standard input).")]) -> None:
    """Validate SPEC offline and print the plan: steps, order, what runs at the same time."""
    from .plan import build_plan

    loaded = _load(spec)
    plan = build_plan(loaded.steps)
    width = max(len(s.name) for s in loaded.steps)
    out = [f"{spec}: valid - {loaded.name}, {len(loaded.steps)} steps in {len(plan.levels)} stages"]
    for number, level in enumerate(plan.levels, 1):
        out.append(f"stage {number}" + (f" ({len(level)} at once)" if len(level) > 1 else ""))
        for name in level:
            step = loaded.step(name)
            policy = loaded.policy(step)
            after = f"after {', '.join(plan.needs[name])}" if plan.needs[name] else "at start"
            out.append(f"  {name:<{width}}  {step.describe()}  [{after}; timeout {policy.timeout:g}s, "
                       f"retries {policy.retries}]")
    typer.echo("\n".join(out))


def _mode(require_api: bool) -> str:
    from .apimode import api_answers, configured_api_url

    url = configured_api_url()
    if url is None:
        if require_api:
            _err("--require-api: no Prefect API configured (set PREFECT_API_URL)")
            raise typer.Exit(EXIT_FAILED)
        return "local"
    if api_answers(url):
        return "prefect"
    if require_api:
        _err(f"--require-api: the Prefect API at {url} does not answer")
        raise typer.Exit(EXIT_FAILED)
    _err(f"warning: the Prefect API at {url} does not answer; running locally (logs go to stderr only)")
    return "local"


@app.command()
def run(
    spec: Annotated[str, typer.Argument(help="The spec file ('-' for standard input).")],
    only: Annotated[list[str] | None, typer.Option("--only", help="Run only this step (repeatable).")] = None,
    status_file: Annotated[str | None, typer.Option(help="Write the outcome here (overrides the spec).")] = None,
    require_api: Annotated[bool, typer.Option(help="Fail (exit 1) rather than run locally without the API.")] = False,
    local: Annotated[bool, typer.Option("--local", help="Run locally even if a Prefect API is configured.")] = False,
) -> None:
    """Run SPEC: as a Prefect flow when the Prefect API answers, else locally with the same semantics."""
    loaded = _load(spec)
    names = {s.name for s in loaded.steps}
    unknown = [n for n in only or [] if n not in names]
    if unknown:
        _err(f"--only: unknown step {', '.join(map(repr, unknown))} (steps: {', '.join(sorted(names))})")
        raise typer.Exit(EXIT_USAGE)
    # --status-file is relative to the shell's directory; the spec's status_file to the spec's directory.
    status_path = Path(status_file).absolute() if status_file else (
        loaded.resolve(loaded.status_file) if loaded.status_file else None)
    mode = "local" if local else _mode(require_api)
    if mode == "prefect":
        from .prefect_mode import run_in_prefect

        ok, reason = run_in_prefect(loaded, only, str(status_path) if status_path else None)
    else:
        ok, reason = _run_local(loaded, only, status_path)
    if not ok:  # one closing line; the full reason (a command's last output) is in the log above
        _err(f"prefect-init: {loaded.name}: {one_line(reason or 'failed')}")
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


def _run_local(loaded: Spec, only: list[str] | None, status_path: Path | None) -> tuple[bool, str]:
    from .engine import LocalExecutor, install_sigterm, run_spec_with
    from .outcome import SUCCEEDED, publish
    from .reporter import LiveReporter, PlainReporter

    cancel = threading.Event()
    install_sigterm(cancel)
    reporter = LiveReporter([s.name for s in loaded.steps]) if sys.stderr.isatty() else PlainReporter()
    try:
        outcome = run_spec_with(loaded, LocalExecutor(loaded, reporter, cancel), reporter, cancel, only)
    finally:
        reporter.close()
    publish(outcome, status_path)
    return outcome.status == SUCCEEDED, outcome.reason()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        _err("prefect-init: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
