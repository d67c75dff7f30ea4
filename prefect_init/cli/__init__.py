"""The ``prefect-init`` command line.

Exit codes: 0 success; 1 a step failed (or the API refused, or the run was stopped); 2 the spec or the command
line is wrong. Errors are one line each, never a traceback.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prefect_init.errors import SpecError, StepError
from prefect_init.run.outcome import one_line

if TYPE_CHECKING:
    from prefect_init.prefect_adapter.observer import Observer
    from prefect_init.spec.model import Spec

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

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
              "initContainers (give --workload), an unwritable -o",
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


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def _load(path: str, defer_unset: bool = False) -> Spec:
    from prefect_init.spec.load import load_spec  # here, not at the top: --help needs no pydantic model

    try:
        return load_spec(path, defer_unset=defer_unset)
    except SpecError as exc:
        for problem in exc.problems:
            _err(str(problem))
        raise typer.Exit(EXIT_USAGE) from None


@app.command(short_help='Validate a spec and print its plan; --online probes its dependencies.')
def check(
    spec: Annotated[str, typer.Argument(help="The spec file ('-' for standard input).")],
    online: Annotated[bool, typer.Option("--online", help="Also probe every dependency, read-only.")] = False,
    unset_ok: Annotated[bool, typer.Option("--unset-ok", help="A variable not set here is no error (CI, outside "
                                           "the pod): each is named once as 'not set here'.")] = False,
    timeout: Annotated[str, typer.Option(help="--online: for the whole preflight (all probes at once).")] = "30s",
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on any lint finding in a migration; --online: "
                                         "a wait target not ready is a problem.")] = False,
    format: Annotated[str, typer.Option("--format", help="--online: text or json.")] = "text",
    all_files: Annotated[bool, typer.Option("--all", help="Lint every migration file, applied ones too (default: "
                                            "the pending ones).")] = False,
) -> None:
    """Validate SPEC offline and print the plan: steps, order, what runs at the same time. With --online, probe
    every step's dependencies read-only and change nothing: exit 1 when a probe finds a problem."""
    from prefect_init.spec.plan import build_plan

    if format not in ("text", "json"):
        _err(f"check: --format is 'text' or 'json', not {format!r}")
        raise typer.Exit(EXIT_USAGE)
    if unset_ok and online:
        _err("check: --unset-ok is for the offline check; --online needs every variable set")
        raise typer.Exit(EXIT_USAGE)
    loaded = _load(spec, defer_unset=unset_ok)
    from prefect_init.spec.credentials import CHECK_WHY, literal_credentials

    for problem in literal_credentials(loaded.text, loaded.file, strict=False, why=CHECK_WHY):
        _err(f"warning: {problem}")
    if online:
        from prefect_init.run import preflight

        results = preflight.run(loaded, _duration("--timeout", timeout), strict)
        typer.echo(preflight.as_json(results) if format == "json" else preflight.text(results))
        raise typer.Exit(EXIT_FAILED if any(f.result == preflight.PROBLEM for _, f in results) else EXIT_OK)
    plan = build_plan(loaded.steps)
    width = max(len(s.name) for s in loaded.steps)
    from prefect_init.words import plural

    out = [f"{spec}: valid - {loaded.name}, {plural(len(loaded.steps), 'step')} in {plural(len(plan.levels), 'stage')}"]
    for number, level in enumerate(plan.levels, 1):
        out.append(f"stage {number}" + (f" ({len(level)} at once)" if len(level) > 1 else ""))
        for name in level:
            step = loaded.step(name)
            policy = loaded.policy(step)
            after = f"after {', '.join(plan.needs[name])}" if plan.needs[name] else "at start"
            try:
                what = step.describe()
            except (AttributeError, TypeError, KeyError):  # a stand-in (--unset-ok): its kind's part as written
                what = f"{step.kind}: (values from variables not set here)"
            optional = "; optional" if step.optional else ""
            out.append(f"  {name:<{width}}  {what}  [{after}; timeout {policy.timeout:g}s, "
                       f"retries {policy.retries}{optional}]")
    if unset_ok:
        import os

        from prefect_init.spec.interpolate import required_variables

        out += [f"{variable}: not set here (resolved where the spec runs)"
                for variable in required_variables(loaded.text) if variable not in os.environ]
    typer.echo("\n".join(out))
    _check_lint(loaded, all_files, strict)


def _check_lint(loaded: Spec, all_files: bool, strict: bool) -> None:
    """check: each migration finding as FILE:LINE: RULE: message (migrate's lint); --strict: exit 1 on any."""
    from prefect_init.run import preflight

    found = 0
    for step, findings, note in preflight.lint(loaded, all_files):
        counted = [f for f in findings if f.allowed is None]
        found += len(counted)
        typer.echo(f"lint {step.name}: {note}" + ("" if note.startswith("not linted") else
                                                   f": {len(counted)} finding(s), "
                                                   f"{sum(f.blocking for f in counted)} blocking"))
        for finding in findings:
            shown = _shown_path(finding.path)
            if finding.allowed is not None:
                typer.echo(f"{shown}:{finding.line}: {finding.rule}: allowed on purpose: {finding.allowed}")
            else:
                how = f" [blocks migrate; instead: {finding.how()}]" if finding.blocking else ""
                typer.echo(finding.text(shown) + how)
    if strict and found:
        raise typer.Exit(EXIT_FAILED)


def _shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _api(require_api: bool) -> str | None:
    """The Prefect API URL to mirror the run into, or None for a local run."""
    from prefect_init.prefect_adapter.discovery import api_answers, configured_api_url

    url = configured_api_url()
    if url is None:
        if require_api:
            _err("--require-api: no Prefect API configured (set PREFECT_API_URL)")
            raise typer.Exit(EXIT_FAILED)
        return None
    if api_answers(url):
        return url
    if require_api:
        _err(f"--require-api: the Prefect API at {url} does not answer")
        raise typer.Exit(EXIT_FAILED)
    _err(f"warning: the Prefect API at {url} does not answer; running locally (logs go to stderr only)")
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
    loaded = _load(spec)
    names = {s.name for s in loaded.steps}
    unknown = [n for n in only or [] if n not in names]
    if unknown:
        _err(f"--only: unknown step {', '.join(map(repr, unknown))} (steps: {', '.join(sorted(names))})")
        raise typer.Exit(EXIT_USAGE)
    # --status-file is relative to the shell's directory; the spec's status_file to the spec's directory.
    status_path = Path(status_file).absolute() if status_file else (
        loaded.resolve(loaded.status_file) if loaded.status_file else None)
    url = None if local else _api(require_api)
    observer = None
    if url is not None:
        from prefect_init.prefect_adapter.mirror import start_observer

        observer, why = start_observer(loaded, url, only, status_path, _err)
        if observer is None:
            if require_api:
                _err(f"--require-api: {why}")
                raise typer.Exit(EXIT_FAILED)
            _err(f"warning: {why}; running locally (logs go to stderr only)")
        else:  # where the run is, as Prefect's engine says "View at"
            from prefect_init.prefect_adapter.discovery import ui_url

            _err(f"prefect-init: {loaded.name}: flow run {observer.run_name}: "
                 f"{ui_url(url, f'runs/flow-run/{observer.flow_run_id}')}")
    started = time.monotonic()
    ok, reason = _run(loaded, only, status_path, observer)
    from prefect_init.run.outcome import ALL_SUCCEEDED
    from prefect_init.spec.durations import format_duration
    from prefect_init.words import plural

    if not ok or reason != ALL_SUCCEEDED:  # one closing line (a failure, or optional steps that failed); the
        _err(f"prefect-init: {loaded.name}: {one_line(reason or 'failed')}")  # full reason is in the log above
    else:  # a success closes too: the spec, how many steps, how long
        ran = len(only) if only else len(loaded.steps)
        took = format_duration(round(time.monotonic() - started, 1))
        _err(f"prefect-init: {loaded.name}: {plural(ran, 'step')} succeeded in {took}")
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
        _err(line)
    if observer is not None:
        from prefect_init.prefect_adapter.mirror import CLOSE_BUDGET, CLOSE_BUDGET_TERMINATED

        observer.finish(outcome)
        warning = observer.close(CLOSE_BUDGET_TERMINATED if cancel.is_set() else CLOSE_BUDGET)
        if warning:
            _err(warning)
    return outcome.status == SUCCEEDED, outcome.reason()


@app.command(short_help='Print the Kubernetes YAML that runs a spec.')
def render(
    kind: Annotated[str, typer.Argument(help="init-container | job | cronjob | work-pool | kustomize | compose")],
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
    env_from_secret: Annotated[list[str] | None, typer.Option(
        "--env-from-secret", metavar="NAME", help="A Secret whose keys become the spec's variables (repeatable).")
                               ] = None,
    env_from_configmap: Annotated[list[str] | None, typer.Option(
        "--env-from-configmap", metavar="NAME", help="A ConfigMap whose keys become variables (repeatable).")
                                  ] = None,
    env: Annotated[list[str] | None, typer.Option(
        "--env", metavar="KEY=VALUE", help="A variable's literal value (repeatable; never a credential).")] = None,
    files: Annotated[list[str] | None, typer.Option(
        "--files", metavar="LOCAL_DIR:PATH", help="Pack a local directory (migrations, templates) into a "
        "ConfigMap mounted read-only at PATH (repeatable; at most 1 MiB each).")] = None,
    into: Annotated[str | None, typer.Option(
        "--into", help="init-container, kustomize (required): your own manifest file, its initContainers replaced "
        "by the prefect-init container; compose: your compose file, the init service added.")] = None,
    workload: Annotated[str | None, typer.Option(
        "--workload", help="--into: the workload to change, KIND/NAME (default: the spec's provenance line, else "
        "the file's only workload).")] = None,
    keep_init: Annotated[bool, typer.Option(
        "--keep-init", help="--into: keep the workload's initContainers, after the prefect-init container.")] = False,
    output: Annotated[str | None, typer.Option(
        "--output", "-o", help="kustomize (required): the kustomization's directory; it must hold the --into "
        "file.")] = None,
    service: Annotated[list[str] | None, typer.Option(
        "--service", help="compose: a service that waits for the init service and gets its volumes (repeatable; "
        "default: every service the spec does not reach).")] = None,
) -> None:
    """Print the Kubernetes YAML that runs SPEC (or, for work-pool, a Prefect work pool's base job template).

    The stream starts with the ConfigMap <name>-init-spec holding the spec as written; ${VAR} references are
    resolved in the pod, so a variable not set here is no error.

    init-container --into FILE prints your own manifests with the prefect-init container in place of the
    initContainers the spec replaces; kustomize writes the same as a kustomization into -o DIR (kubectl apply -k
    DIR); compose prints a Docker Compose file whose services wait for an init service that runs the spec.
    """
    from prefect_init.render import KINDS, RenderOptions
    from prefect_init.render import render as render_kind
    from prefect_init.render.env import credential_warnings, refused_env, unprovided_note
    from prefect_init.render.files import read_files
    from prefect_init.render.pod import path_warnings, privilege_note, status_file_note

    problems = []
    if kind not in KINDS:
        problems.append(f"render: unknown kind {kind!r} (kinds: {', '.join(KINDS)})")
    if kind == "cronjob" and not schedule:
        problems.append("render cronjob: --schedule is required (a cron expression, e.g. '0 3 * * *')")
    problems += _into_problems(kind, into, output, workload, keep_init, app_image, namespace, service_account)
    for flag, value, kinds in (("--schedule", schedule, ("cronjob",)), ("--timezone", timezone, ("cronjob",)),
                               ("--hook", hook, ("job",)), ("--app-image", app_image, ("init-container", "compose")),
                               *((flag, given or None, ("init-container", "job", "cronjob", "kustomize"))
                                 for flag, given in (("--env-from-secret", env_from_secret),
                                                     ("--env-from-configmap", env_from_configmap))),
                               ("--files", files or None, ("init-container", "job", "cronjob", "kustomize", "compose")),
                               ("--env", env or None, ("init-container", "job", "cronjob", "kustomize", "compose")),
                               ("--into", into, ("init-container", "kustomize", "compose")),
                               ("--workload", workload, ("init-container", "kustomize")),
                               ("--keep-init", keep_init or None, ("init-container", "kustomize")),
                               ("-o", output, ("kustomize",)), ("--service", service or None, ("compose",))):
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
    mounts = []
    for argument in files or []:
        try:
            mounts.append(read_files(argument))
        except ValueError as exc:
            _err(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
    literal = _pairs(env, "--env")
    loaded = _load(spec, defer_unset=True)
    options = RenderOptions(image=image, namespace=namespace, service_account=service_account, api_url=api_url,
                            hook=hook, schedule=schedule, timezone=timezone,  # type: ignore[arg-type]
                            env_from_secrets=tuple(env_from_secret or ()),
                            env_from_configmaps=tuple(env_from_configmap or ()), env=tuple(literal.items()),
                            files=tuple(mounts), **({"app_image": app_image} if app_image else {}))
    if into is not None or kind in ("kustomize", "compose"):
        _render_into(kind, spec, loaded, options, into, workload, keep_init, output, tuple(service or ()))
        return
    refused = refused_env(loaded, options) if kind != "work-pool" else []
    if refused:
        for line in refused:
            _err(line)
        raise typer.Exit(EXIT_USAGE)
    for line in credential_warnings(loaded) if kind != "work-pool" else []:
        _err(line)
    for warning in path_warnings(loaded, options if kind != "work-pool" else None):
        _err(f"warning: {warning}")
    if kind != "work-pool":
        for line in [*unprovided_note(loaded, options), *privilege_note(loaded), *status_file_note(loaded)]:
            _err(line)
    if kind == "work-pool":
        _needs_prefect("render work-pool")
        from prefect_init.prefect_adapter.workpool import render_work_pool

        sys.stdout.write(render_work_pool(options))
    else:
        sys.stdout.write(render_kind(kind, loaded, options))


def _into_problems(kind: str, into: str | None, output: str | None, workload: str | None, keep_init: bool,
                   app_image: str | None, namespace: str | None, service_account: str | None) -> list[str]:
    """The flags of --into, kustomize and compose that do not go together."""
    problems = []
    if kind == "kustomize" and into is None:
        problems.append("render kustomize: --into WORKLOAD.yaml is required (your manifest file, the kustomization's "
                        "resource)")
    if kind == "kustomize" and output is None:
        problems.append("render kustomize: -o DIR is required (where kustomization.yaml is written)")
    if kind == "init-container" and into is None:
        problems += [f"render init-container: {flag} is for --into only" for flag, value in
                     (("--workload", workload), ("--keep-init", keep_init or None)) if value is not None]
    if kind in ("kustomize", "compose") or (kind == "init-container" and into is not None):
        for flag, value in (("--namespace", namespace), ("--service-account", service_account)):
            if value is not None:
                what = "a compose file" if kind == "compose" else "--into"
                problems.append(f"render {kind}: {flag} is not for {what}: your manifests keep their own (the "
                                "ConfigMap goes into the workload's namespace)")
    if app_image is not None and into is not None and kind in ("init-container", "compose"):
        problems.append(f"render {kind}: --app-image is not for --into: your app keeps its own image")
    return problems


def _render_into(kind: str, spec_path: str, loaded: Spec, options: Any, into: str | None, workload: str | None,
                 keep_init: bool, output: str | None, services: tuple[str, ...]) -> None:
    """render init-container --into, kustomize, compose: one line per problem (exit 2), never a traceback."""
    from prefect_init.render.env import credential_warnings, refused_env
    from prefect_init.render.into import IntoError, path_warnings_into, render_into, unprovided_note_into
    from prefect_init.render.pod import path_warnings, privilege_note, status_file_note

    refused = refused_env(loaded, options)
    for line in refused:
        _err(line)
    if refused:
        raise typer.Exit(EXIT_USAGE)
    for line in credential_warnings(loaded) if kind != "compose" else []:  # compose mounts the file, no ConfigMap
        _err(line)
    text = None
    if into is not None:
        try:
            text = Path(into).read_text(encoding="utf-8")
        except FileNotFoundError:
            _err(f"render {kind}: --into {into}: no such file")
            raise typer.Exit(EXIT_USAGE) from None
        except (OSError, UnicodeDecodeError) as exc:
            _err(f"render {kind}: --into {into}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
            raise typer.Exit(EXIT_USAGE) from None
    notes: list[str] = []
    warnings = path_warnings(loaded, options)
    changes = None
    try:
        if kind == "compose":
            from prefect_init.render.compose import compose_unprovided_note, render_compose

            if spec_path == "-":
                _err("render compose: SPEC must be a file (the init service mounts it), not standard input")
                raise typer.Exit(EXIT_USAGE)
            result = render_compose(loaded, options, spec_path, str(Path(into).parent) if into else ".",
                                    (into, text) if into is not None and text is not None else None, services)
            notes, out = result.notes, result.text
            notes += compose_unprovided_note(loaded, options)
        elif kind == "kustomize":
            from prefect_init.errors import StepFailed
            from prefect_init.render.kustomize import build, write

            assert into is not None and output is not None
            built = build(loaded, options, spec_path, Path(into), Path(output), workload, keep_init)
            notes += [f"warning: {w}" for w in built.warnings]
            notes += unprovided_note_into(loaded, options, built.changes)
            warnings = path_warnings_into(loaded, options, built.changes)
            changes = built.changes
            try:
                write(Path(output), built.files)
            except StepFailed as exc:
                _err(f"render kustomize: {exc}")
                raise typer.Exit(EXIT_FAILED) from None
            out = "".join(f"{Path(output) / name}\n" for name in built.files)
            notes.append(f"note: apply it with: kubectl apply -k {output}")
        else:
            assert into is not None and text is not None
            rendered = render_into(loaded, options, text, into, workload, keep_init)
            notes += [f"warning: {w}" for w in rendered.warnings]
            notes += unprovided_note_into(loaded, options, rendered.changes)
            warnings = path_warnings_into(loaded, options, rendered.changes)
            changes = rendered.changes
            out = rendered.text
    except IntoError as exc:
        _err(f"render {kind}: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    except IsADirectoryError as exc:
        _err(f"render {kind}: {exc.filename}: is a directory, not a file: it is not replaced")
        raise typer.Exit(EXIT_USAGE) from None
    except (AttributeError, TypeError, KeyError, IndexError):
        # a field of the user's file that is not of the type Kubernetes (or Compose) gives it, somewhere the checks
        # above do not look: said in words, never as a traceback
        what, check = (("compose file", "docker compose -f") if kind == "compose" else
                       ("manifest", "kubectl apply --dry-run=client -f"))
        _err(f"render {kind}: {into}: a field of this {what} is not of the type it must be (a list where a mapping "
             f"belongs, or the reverse): check it with `{check} {into}{' config' if kind == 'compose' else ''}`")
        raise typer.Exit(EXIT_USAGE) from None
    for warning in warnings:
        _err(f"warning: {warning}")
    if kind != "compose":  # --into: who the container runs as is the replaced containers' (changes.notes)
        notes += [*(changes.notes if changes is not None else privilege_note(loaded)), *status_file_note(loaded)]
    for line in notes:
        _err(line)
    sys.stdout.write(out)


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            _err(f"{flag} {item!r}: expected KEY=VALUE with KEY a variable name")
            raise typer.Exit(EXIT_USAGE)
        out[key] = value
    return out


def _needs_prefect(command: str) -> None:
    """A command that needs prefect, in the init image (which leaves it out): one line and exit 2."""
    from importlib.util import find_spec

    if find_spec("prefect") is None or find_spec("prefect_kubernetes") is None:
        _err(f"prefect-init {command}: needs prefect, which this install leaves out (the init image): use the "
             "worker image, or `pip install prefect-init`")
        raise typer.Exit(EXIT_USAGE)


@contextmanager
def _one_line_failures() -> Iterator[None]:
    """A spec error (exit 2, one line per problem) or a command's own failure (its code, one line): no traceback."""
    from prefect_init.prefect_adapter.client import CommandError

    try:
        yield
    except SpecError as exc:
        for problem in exc.problems:
            _err(str(problem))
        raise typer.Exit(EXIT_USAGE) from None
    except CommandError as exc:
        _err(f"prefect-init: {exc}")
        raise typer.Exit(exc.code) from None


def _duration(flag: str, value: str) -> float:
    from prefect_init.spec.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        _err(f"{flag} {value!r}: {exc}")
        raise typer.Exit(EXIT_USAGE) from None


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
    _needs_prefect("deploy")
    from prefect_init.prefect_adapter.deploy import DeployRequest
    from prefect_init.prefect_adapter.deploy import deploy as deploy_spec

    if create_pool not in (None, "process", "kubernetes"):
        _err(f"--create-pool is 'process' or 'kubernetes', not {create_pool!r}")
        raise typer.Exit(EXIT_USAGE)
    variables = _pairs(env, "--env")
    loaded = _load(spec, defer_unset=True)
    request = DeployRequest(spec=loaded, pool=pool, name=name, crons=list(cron or []), timezone=timezone,
                            image=image, namespace=namespace, service_account=service_account, env=variables,
                            tags=list(tag or []), base_dir=base_dir, create_pool=create_pool)
    with _one_line_failures():
        deployed = deploy_spec(request)
    if deployed.created_pool:
        typer.echo(f"created work pool {pool!r} ({create_pool})")
    typer.echo(f"deployment {deployed.name}: {deployed.url}")
    typer.echo(f"schedules: {', '.join(deployed.schedules) if deployed.schedules else 'none'}")
    typer.echo(f"next: a worker must serve the pool (prefect worker start --pool {pool}, with the same "
               f"PREFECT_API_URL); then: prefect-init trigger {deployed.name}")


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
    _needs_prefect("trigger")
    from prefect_init.prefect_adapter.trigger import trigger as trigger_run

    seconds = _duration("--timeout", timeout) if timeout is not None else None
    variables = _pairs(env, "--env")
    with _one_line_failures():
        code = trigger_run(target, variables, list(tag or []), seconds, wait, typer.echo)
    raise typer.Exit(code)


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
    _needs_prefect("runs")
    from prefect_init.prefect_adapter.runs import list_runs, spec_tag, table

    if spec and tag:
        _err("runs: give a SPEC or --tag, not both")
        raise typer.Exit(EXIT_USAGE)
    with _one_line_failures():
        rows = list_runs(spec_tag(spec) if spec else tag, failed, limit, scheduled)
    typer.echo(table(rows) if rows else "no runs")


@app.command(short_help='Every migration of a migrate step and its state, read-only.')
def migrations(
    spec: Annotated[str, typer.Argument(help="The spec file ('-' for standard input).")],
    step: Annotated[str | None, typer.Option(help="The migrate step (when the spec has several).")] = None,
    format: Annotated[str, typer.Option("--format", help="text (a table) or json.")] = "text",
) -> None:
    """Every migration of a migrate step with its state (applied, pending, baseline, adopted, changed, missing,
    failed), read-only: nothing is created or applied. Exit 1 when a file changed, went missing or failed."""
    if format not in ("text", "table", "json"):  # table: the word of earlier releases
        _err(f"migrations: --format is 'text' or 'json', not {format!r}")
        raise typer.Exit(EXIT_USAGE)
    from prefect_init.kinds.migrate.step import Step as MigrateStep

    loaded = _load(spec)
    candidates = [s for s in loaded.steps if isinstance(s, MigrateStep) and s.migrate.dir]
    chosen = [s for s in candidates if s.name == step] if step else candidates
    names = ", ".join(s.name for s in candidates) or "none with dir:"
    if step and not chosen:
        _err(f"migrations: no migrate step {step!r} (migrate steps: {names})")
        raise typer.Exit(EXIT_USAGE)
    if len(chosen) != 1:
        _err(f"migrations: {'several migrate steps: give --step' if chosen else 'no migrate step with dir:'} "
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
        _err(f"migrations: {exc}")
        raise typer.Exit(EXIT_FAILED) from None
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        _err(redact(f"migrations: {settings.database}: {first}"))
        raise typer.Exit(EXIT_FAILED) from None
    items = entries(versioned, repeatable, rows)
    typer.echo(as_json(items) if format == "json" else as_table(items))
    raise typer.Exit(EXIT_FAILED if any(e.state in PROBLEMS for e in items) else EXIT_OK)


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
        _err(f"import: {manifest}: cannot read it: {reason}")
        raise typer.Exit(EXIT_USAGE) from None
    try:
        imported = import_workload(text, workload, "standard input" if manifest == "-" else manifest,
                                   replace_all=replace_all)
    except ImportProblem as exc:
        _err(f"import: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    if spec is not None:
        from prefect_init.errors import StepError
        from prefect_init.runtime.atomic import write_atomic

        try:
            write_atomic(spec, imported.spec_text)
        except StepError as exc:
            _err(f"import: -o {exc}")
            raise typer.Exit(EXIT_USAGE) from None
    else:
        sys.stdout.write(imported.spec_text)
    for line in imported.notes:
        _err(line)
    kind, name = imported.workload
    _err(f"{'wrote ' + spec if spec else 'the spec is on stdout'}: {kind}/{name}, initContainers "
         f"{', '.join(imported.init_containers)}; next: prefect-init check {spec or 'SPEC'} --unset-ok")


@app.command(short_help="Print the spec's JSON Schema, for an editor's completion and checks as you type.")
def schema() -> None:
    """Print the JSON Schema of a spec file (draft 2020-12), made from the models this version reads. Save it
    (prefect-init schema > prefect-init.schema.json) and point an editor at it: a first line
    "# yaml-language-server: $schema=prefect-init.schema.json" in the spec, or the "yaml.schemas" setting. The
    schema checks keys, types and values; prefect-init check also checks the order (after:), the names and the
    variables."""
    from prefect_init.spec.schema import schema_text

    typer.echo(schema_text(), nl=False)


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
        _err("prefect-init: interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug of ours: one line, not a traceback (PREFECT_INIT_DEBUG=1 shows it)
        import os

        if os.environ.get("PREFECT_INIT_DEBUG"):
            raise
        _err(f"prefect-init: internal error: {type(exc).__name__}: {one_line(str(exc))} (a bug: please report "
             "it; PREFECT_INIT_DEBUG=1 prints the traceback)")
        sys.exit(EXIT_FAILED)

