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


def _load(path: str, defer_unset: bool = False) -> Spec:
    try:
        return load_spec(path, defer_unset=defer_unset)
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


@app.command()
def render(
    kind: Annotated[str, typer.Argument(help="init-container | job | cronjob | work-pool")],
    spec: Annotated[str, typer.Argument(help="The spec file ('-' for standard input).")],
    image: Annotated[str, typer.Option(help="The prefect-init image (deployments/Dockerfile).")],
    namespace: Annotated[str | None, typer.Option(help="metadata.namespace of every document.")] = None,
    service_account: Annotated[str | None, typer.Option(help="The pods' ServiceAccount (Vault's Kubernetes auth).")
                               ] = None,
    api_url: Annotated[str | None, typer.Option(help="PREFECT_API_URL of the pods (else they run locally).")] = None,
    app_image: Annotated[str | None, typer.Option(help="init-container: the app container's image.")] = None,
    hook: Annotated[str | None, typer.Option(help="job: make it a 'helm' (pre-install,pre-upgrade) or 'argo' "
                                             "(PreSync) hook.")] = None,
    schedule: Annotated[str | None, typer.Option(help="cronjob (required): a cron expression.")] = None,
    timezone: Annotated[str | None, typer.Option(help="cronjob: the schedule's time zone (e.g. Europe/Berlin).")
                        ] = None,
) -> None:
    """Print the Kubernetes YAML that runs SPEC (or, for work-pool, a Prefect work pool's base job template).

    The stream starts with the ConfigMap <name>-init-spec holding the spec as written; ${VAR} references are
    resolved in the pod, so a variable not set here is no error.
    """
    from .render import KINDS, RenderOptions
    from .render import render as render_kind
    from .render.pod import path_warnings

    problems = []
    if kind not in KINDS:
        problems.append(f"render: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
    if kind == "cronjob" and not schedule:
        problems.append("render cronjob: --schedule is required (a cron expression, e.g. '0 3 * * *')")
    for flag, value, kinds in (("--schedule", schedule, ("cronjob",)), ("--timezone", timezone, ("cronjob",)),
                               ("--hook", hook, ("job",)), ("--app-image", app_image, ("init-container",))):
        if value is not None and kind in KINDS and kind not in kinds:
            problems.append(f"render {kind}: {flag} is for {' and '.join(kinds)} only")
    if hook is not None and hook not in ("helm", "argo"):
        problems.append(f"render: --hook is 'helm' or 'argo', not {hook!r}")
    if schedule is not None and len(schedule.split()) != 5:
        problems.append(f"render: --schedule {schedule!r}: expected five cron fields, like '*/15 * * * *'")
    if problems:
        for problem in problems:
            _err(problem)
        raise typer.Exit(EXIT_USAGE)
    loaded = _load(spec, defer_unset=True)
    for warning in path_warnings(loaded):
        _err(f"warning: {warning}")
    options = RenderOptions(image=image, namespace=namespace, service_account=service_account, api_url=api_url,
                            hook=hook, schedule=schedule, timezone=timezone,  # type: ignore[arg-type]
                            **({"app_image": app_image} if app_image else {}))
    sys.stdout.write(render_kind(kind, loaded, options))


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        _err("prefect-init: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
