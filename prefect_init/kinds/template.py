"""The ``template`` step: a file rendered from a Jinja2 template (sandboxed, undefined names are errors), with
values, secrets from files and parsed documents; what people otherwise write by hand with ``envsubst`` or ``sed``.

.. code-block:: yaml

    - name: nginx-conf
      after: [secrets, clone]
      template:
        source: templates/nginx.conf.j2        # or inline: "..."
        dest: /config/nginx.conf
        mode: "0644"                           # default "0400" when a secret is used, else "0644"
        vars: {server_name: "${SERVER_NAME}", revision: "${steps.clone.revision}"}
        secrets: {db_password: {file: /secrets/db_password}}   # masked everywhere
        files: {app: /secrets/app-secrets.json}                # parsed by suffix: json, yaml, toml, env

The output is exactly what the template says, its final newline included. It is written to a temporary file
beside ``dest`` and renamed into place; an identical output leaves ``dest`` untouched. An undefined name, a
syntax error (with its line) or a sandbox violation is final, names the name or the line (never a value), and
leaves ``dest`` as it was. ``templates:`` (a list of the same) renders several files in one step.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from prefect_init.errors import StepFailed
from prefect_init.runtime.atomic import AtomicFile, make_parent, write_error
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.documents import guess_format, parse_file
from prefect_init.runtime.redaction import register_secret, register_values
from prefect_init.runtime.values import resolve_value
from prefect_init.spec.model import FromFile, Mode, StepBase, StrictModel


class TemplateSpec(StrictModel):
    source: str | None = None
    inline: str | None = None
    dest: str
    mode: Mode | None = None
    vars: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str | FromFile] = Field(default_factory=dict)
    files: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> TemplateSpec:
        if (self.source is None) == (self.inline is None):
            raise ValueError("give exactly one of source (a template file) or inline (the template's text)")
        clash = (set(self.vars) & set(self.secrets)) | (set(self.vars) & set(self.files)) | (
            set(self.secrets) & set(self.files))
        if clash:
            raise ValueError(f"a name is given twice: {', '.join(sorted(clash))}")
        return self

    def label(self) -> str:
        return self.source or "inline template"


class Step(StepBase):
    kind = "template"
    template: TemplateSpec

    def describe(self) -> str:
        return f"template: {self.template.label()} -> {self.template.dest}"


def _environment(loader_dir: Path | None) -> Any:
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(loader=FileSystemLoader(str(loader_dir)) if loader_dir else None,
                                undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False)


def render_text(spec: TemplateSpec, ctx: RunContext) -> str:
    """The rendered text; every failure a final :class:`StepFailed` naming a name or a line, never a value."""
    from jinja2 import TemplateError, TemplateSyntaxError, UndefinedError
    from jinja2.sandbox import SecurityError

    label = spec.label()
    values: dict[str, Any] = dict(spec.vars)
    for name, value in spec.secrets.items():
        secret = resolve_value(value, ctx, f"template secret {name}")
        register_secret(secret)
        values[name] = secret
    for name, path in spec.files.items():
        resolved = ctx.resolve(path)
        fmt = guess_format(str(resolved))
        if fmt is None:
            raise StepFailed(f"template {label}: files.{name}: {path}: cannot tell the format from the suffix "
                             "(.json, .yaml, .yml, .toml, .env)")
        try:
            values[name] = parse_file(resolved, fmt, f"template {label}: files.{name}")
            register_values(values[name])  # usually secrets (/secrets/app-secrets.json): masked like them
        except OSError as exc:
            raise StepFailed(f"template {label}: files.{name}: {path}: {exc.strerror}") from None
    try:
        if spec.source is not None:
            source = ctx.resolve(spec.source)
            if not source.is_file():
                raise StepFailed(f"template {source}: no such file (is the volume mounted?)")
            template = _environment(source.parent).get_template(source.name)
        else:
            template = _environment(None).from_string(spec.inline or "")
        return str(template.render(values))
    except TemplateSyntaxError as exc:
        raise StepFailed(f"template {label}: syntax error at line {exc.lineno}: {exc.message}") from None
    except UndefinedError as exc:
        raise StepFailed(f"template {label}: {exc.message} (give it in vars:, secrets: or files:)") from None
    except SecurityError as exc:
        raise StepFailed(f"template {label}: refused by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise StepFailed(f"template {label}: {type(exc).__name__}: {exc.message}") from None
    except (TypeError, ValueError, ZeroDivisionError) as exc:  # an operation in the template failed
        raise StepFailed(f"template {label}: {type(exc).__name__} while rendering") from None


def write(spec: TemplateSpec, ctx: RunContext) -> tuple[Path, str, bool]:
    """Render and write one destination; (dest, sha256, whether it changed)."""
    text = render_text(spec, ctx).encode()
    dest = ctx.resolve(spec.dest)
    mode = spec.mode if spec.mode is not None else (0o400 if spec.secrets else 0o644)
    digest = hashlib.sha256(text).hexdigest()
    try:
        same = dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    except OSError:
        same = False
    if same:
        try:
            if dest.stat().st_mode & 0o7777 != mode:
                dest.chmod(mode)
        except OSError as exc:
            raise write_error(dest, exc) from None
        return dest, digest, False
    make_parent(dest)
    with AtomicFile(dest, mode) as out:
        out.handle.write(text)
        out.commit()
    return dest, digest, True


def run_all(specs: list[TemplateSpec], ctx: RunContext) -> str:
    changed = 0
    for spec in specs:
        dest, digest, wrote = write(spec, ctx)
        changed += wrote
        ctx.log.info(f"{dest}: {'written' if wrote else 'unchanged'} (sha256 {digest[:12]})")
        if len(specs) == 1:
            ctx.output("sha256", digest)
    return f"{changed} of {len(specs)} files written"


def run(step: Step, ctx: RunContext) -> str:
    return run_all([step.template], ctx)


def probe(step: Step, ctx: RunContext) -> Any:
    """The template parses, and every name it uses is in vars, secrets or files (an ancestor's output counts)."""
    from prefect_init.runtime.probe import OK, PROBLEM, Finding

    return probe_all([step.template], ctx, Finding, OK, PROBLEM)


def probe_all(specs: list[TemplateSpec], ctx: RunContext, finding: Any, ok: str, problem: str) -> Any:
    from jinja2 import TemplateSyntaxError, meta

    problems, notes = [], []
    for spec in specs:
        label = spec.label()
        if spec.source is not None:
            source = ctx.resolve(spec.source)
            if not source.is_file():
                if ctx.produced_by_ancestor(source):  # type: ignore[attr-defined]
                    notes.append(f"{source}: produced by an earlier step")
                else:
                    problems.append(f"template {source}: no such file")
                continue
            text = source.read_text(encoding="utf-8")
        else:
            text = spec.inline or ""
        try:
            used = meta.find_undeclared_variables(_environment(None).parse(text))
        except TemplateSyntaxError as exc:
            problems.append(f"template {label}: syntax error at line {exc.lineno}: {exc.message}")
            continue
        given = set(spec.vars) | set(spec.secrets) | set(spec.files)
        missing = sorted(used - given)
        if missing:
            problems.append(f"template {label}: undefined: {', '.join(missing)}")
    if problems:
        return finding(problem, problems)
    return finding(ok, [f"{len(specs)} templates parse, every name defined", *notes])
