"""``prefect-init render``: the Kubernetes YAML that runs a spec; --into, kustomize and compose."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from prefect_init.cli.common import EXIT_FAILED, EXIT_USAGE, app, err, load, needs_prefect, pairs

if TYPE_CHECKING:
    from prefect_init.spec.model import Spec


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
            err(problem)
        raise typer.Exit(EXIT_USAGE)
    mounts = []
    for argument in files or []:
        try:
            mounts.append(read_files(argument))
        except ValueError as exc:
            err(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
    literal = pairs(env, "--env")
    loaded = load(spec, defer_unset=True)
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
            err(line)
        raise typer.Exit(EXIT_USAGE)
    for line in credential_warnings(loaded) if kind != "work-pool" else []:
        err(line)
    for warning in path_warnings(loaded, options if kind != "work-pool" else None):
        err(f"warning: {warning}")
    if kind != "work-pool":
        for line in [*unprovided_note(loaded, options), *privilege_note(loaded), *status_file_note(loaded)]:
            err(line)
    if kind == "work-pool":
        needs_prefect("render work-pool")
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
        err(line)
    if refused:
        raise typer.Exit(EXIT_USAGE)
    for line in credential_warnings(loaded) if kind != "compose" else []:  # compose mounts the file, no ConfigMap
        err(line)
    text = None
    if into is not None:
        try:
            text = Path(into).read_text(encoding="utf-8")
        except FileNotFoundError:
            err(f"render {kind}: --into {into}: no such file")
            raise typer.Exit(EXIT_USAGE) from None
        except (OSError, UnicodeDecodeError) as exc:
            err(f"render {kind}: --into {into}: cannot read it ({getattr(exc, 'strerror', None) or exc})")
            raise typer.Exit(EXIT_USAGE) from None
    notes: list[str] = []
    warnings = path_warnings(loaded, options)
    changes = None
    try:
        if kind == "compose":
            from prefect_init.render.compose import compose_unprovided_note, render_compose

            if spec_path == "-":
                err("render compose: SPEC must be a file (the init service mounts it), not standard input")
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
                err(f"render kustomize: {exc}")
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
        err(f"render {kind}: {exc}")
        raise typer.Exit(EXIT_USAGE) from None
    except IsADirectoryError as exc:
        err(f"render {kind}: {exc.filename}: is a directory, not a file: it is not replaced")
        raise typer.Exit(EXIT_USAGE) from None
    except (AttributeError, TypeError, KeyError, IndexError):
        # a field of the user's file that is not of the type Kubernetes (or Compose) gives it, somewhere the checks
        # above do not look: said in words, never as a traceback
        what, check = (("compose file", "docker compose -f") if kind == "compose" else
                       ("manifest", "kubectl apply --dry-run=client -f"))
        err(f"render {kind}: {into}: a field of this {what} is not of the type it must be (a list where a mapping "
            f"belongs, or the reverse): check it with `{check} {into}{' config' if kind == 'compose' else ''}`")
        raise typer.Exit(EXIT_USAGE) from None
    for warning in warnings:
        err(f"warning: {warning}")
    if kind != "compose":  # --into: who the container runs as is the replaced containers' (changes.notes)
        notes += [*(changes.notes if changes is not None else privilege_note(loaded)), *status_file_note(loaded)]
    for line in notes:
        err(line)
    sys.stdout.write(out)

