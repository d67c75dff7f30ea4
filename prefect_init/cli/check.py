"""``prefect-init check``: the spec's plan, its migrations' lint; --online probes its dependencies."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from prefect_init.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, app, duration, err, load

if TYPE_CHECKING:
    from prefect_init.spec.model import Spec


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
        err(f"check: --format is 'text' or 'json', not {format!r}")
        raise typer.Exit(EXIT_USAGE)
    if unset_ok and online:
        err("check: --unset-ok is for the offline check; --online needs every variable set")
        raise typer.Exit(EXIT_USAGE)
    loaded = load(spec, defer_unset=unset_ok)
    from prefect_init.spec.credentials import CHECK_WHY, literal_credentials

    for problem in literal_credentials(loaded.text, loaded.file, strict=False, why=CHECK_WHY):
        err(f"warning: {problem}")
    if online:
        from prefect_init.run import preflight

        results = preflight.run(loaded, duration("--timeout", timeout), strict)
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

