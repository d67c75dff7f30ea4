"""The ``template`` step: a file rendered from a Jinja2 template (sandboxed, undefined names are errors), with
values, secrets from files and parsed documents; what people otherwise write by hand with ``envsubst`` or ``sed``.

.. code-block:: yaml

    - name: nginx-conf
      after: [secrets, clone]
      template:
        source: templates/nginx.conf.j2        # or inline: "..."
        dest: /config/nginx.conf
        mode: "0644"                           # default "0400" when a secret is used (secrets:, files:)
        vars: {server_name: "${SERVER_NAME}", revision: "${steps.clone.revision}"}
        secrets: {db_password: {file: /secrets/db_password}}   # masked everywhere
        files: {app: /secrets/app-secrets.json}                # parsed by suffix: json, yaml, toml, env

The output is exactly what the template says, its final newline included. It is written to a temporary file
beside ``dest`` and renamed into place; an identical output leaves ``dest`` untouched. An undefined name, a
syntax error (with its line) or a sandbox violation is final, names the name or the line (never a value), and
leaves ``dest`` as it was. ``templates:`` (a list of the same) renders several files in one step.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import Field, model_validator

from prefect_init.errors import StepCancelled, StepError, StepFailed, StepTimeout
from prefect_init.runtime.atomic import (
    AtomicFile,
    describe,
    make_parent,
    open_dir,
    open_nofollow,
    open_regular,
    opened_dir,
    read_nofollow,
    read_only,
    set_attributes,
    write_error,
)
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.documents import guess_format, parse
from prefect_init.runtime.redaction import register_secret, register_values
from prefect_init.runtime.values import resolve_value
from prefect_init.spec.durations import format_duration
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


MAX_TEMPLATE_BYTES = 10 * 1024 * 1024
"""A template file (or one it includes) larger than this is refused: a template is text a person wrote."""
MAX_OUTPUT_BYTES = 64 * 1024 * 1024
"""A rendered output longer than this (in characters, so at least as many bytes) fails the step as it grows, before
it fills the container's memory: each piece may be within :data:`MAX_REPEAT`, a loop of them is not."""
MAX_POWER_BITS = 1 << 16
"""``a ** b`` on integers whose result would have more bits than this is refused before it starts."""
MAX_REPEAT = 16 * 1024 * 1024
"""``text * n`` or ``list * n`` with more characters or items than this is refused before it starts."""


class _Stop(BaseException):
    """Raised into a template's frame by the watch (:func:`_watched`); a BaseException, so no ``except
    Exception`` on the way swallows it."""

    def __init__(self, error: StepError) -> None:
        super().__init__(str(error))
        self.error = error


def _too_large(what: str) -> Any:
    from jinja2.sandbox import SecurityError

    return SecurityError(f"{what} too large to compute (a template's values are text, not arithmetic)")


def _bounded_binop(left: Any, operator: str, right: Any) -> Any:
    """``**`` and ``*`` as Python does them, unless one computation in C would run for minutes or fill the
    memory: a thread running C cannot be stopped at the deadline, so it must not start."""
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0 and \
                right * max(1, abs(left).bit_length() - 1) > MAX_POWER_BITS:
            raise _too_large(f"a power ({MAX_POWER_BITS} bits at most)")
        return left ** right
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, (str, bytes, list, tuple)) and isinstance(count, int) and \
                len(sequence) * count > MAX_REPEAT:
            raise _too_large(f"a repetition ({MAX_REPEAT} characters or items at most)")
    return left * right


class _Loader:
    """Templates from one directory, for ``{% include %}`` and ``{% import %}``; nothing reaches outside it.

    The directory is opened without following a link the app could have planted (``open_dir``, which also
    follows one on a read-only mount: a ConfigMap's ``sub -> ..data/sub``); a name in it
    may be a link that stays inside (a ConfigMap volume is made of those: ``app.j2 -> ..data/app.j2``), never one
    that leads out of it (``leak.txt -> /proc/self/environ``): the file is opened, and the path the kernel says
    it opened (``/proc/self/fd``) must lie under the directory's own. Only regular files, at most
    :data:`MAX_TEMPLATE_BYTES`."""

    def __init__(self, directory: Path, label: str) -> None:
        from jinja2 import BaseLoader

        self.directory, self.label = directory, label
        self.fd = open_dir(directory, for_reading=True)
        self.real = _real(self.fd) or str(directory)
        self.filenames: set[str] = set()
        loader = self

        class Loader(BaseLoader):
            def get_source(self, environment: Any, template: str) -> tuple[str, str, Any]:
                return loader.get_source(template)

        self.jinja = Loader()

    def close(self) -> None:
        os.close(self.fd)

    def get_source(self, template: str) -> tuple[str, str, Any]:
        from jinja2 import TemplateNotFound
        from jinja2.loaders import split_template_path

        pieces = split_template_path(template)  # '..' is refused here
        path = self.directory.joinpath(*pieces)
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
        if _real(self.fd) is None:  # no /proc: no link at all below the directory
            flags |= os.O_NOFOLLOW
        try:
            fd = os.open(os.path.join(*pieces), flags, dir_fd=self.fd)
        except FileNotFoundError:
            raise TemplateNotFound(template) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StepFailed(f"template {self.label}: {template}: {path} is a symbolic link; prefect-init "
                                 f"never follows a link in a template's directory without /proc") from None
            raise StepFailed(f"template {self.label}: {describe(path, exc)}") from None
        try:
            real = _real(fd)
            if real is not None and not real.startswith(self.real.rstrip("/") + "/"):
                raise StepFailed(f"template {self.label}: {template}: {path} is a symbolic link to {real}, outside "
                                 f"{self.directory}; prefect-init never follows a link out of a template's "
                                 "directory")
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StepFailed(f"template {self.label}: {template}: {path} is not a regular file")
            if st.st_nlink > 1 and not read_only(self.fd):
                raise StepFailed(f"template {self.label}: {template}: {path} has {st.st_nlink} hard links: another "
                                 "name of the same file may lie outside the template's directory; prefect-init reads "
                                 "a file in a writable directory only by its one name")
            with os.fdopen(os.dup(fd), "rb") as handle:
                data = handle.read(MAX_TEMPLATE_BYTES + 1)
        finally:
            os.close(fd)
        if len(data) > MAX_TEMPLATE_BYTES:
            raise StepFailed(f"template {self.label}: {template}: {path} is larger than "
                             f"{MAX_TEMPLATE_BYTES // (1024 * 1024)} MiB")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise StepFailed(f"template {self.label}: {template}: {path} is not UTF-8 text") from None
        self.filenames.add(str(path))
        return text, str(path), lambda: True  # one rendering: never loaded twice


def _real(fd: int) -> str | None:
    """The path the kernel says ``fd`` is open on; ``None`` without ``/proc``."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _environment(loader: _Loader | None) -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    class Environment(SandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator in ("*", "**"):
                return _bounded_binop(left, operator, right)
            return super().call_binop(context, operator, left, right)

    return Environment(loader=loader.jinja if loader else None, undefined=StrictUndefined,
                       keep_trailing_newline=True, autoescape=False)


@contextlib.contextmanager
def _watched(ctx: RunContext, label: str, filenames: set[str]) -> Iterator[None]:
    """Stop the rendering at the step's deadline and on SIGTERM: a trace function in this thread, called for
    the template's own code only (Jinja compiles it with the file name ``<template>`` or the path the loader
    gave, listed in ``filenames``; every other frame returns at once), raises :class:`_Stop` at the first line
    run after either."""
    cancelled, clock, deadline = ctx.cancel.is_set, time.monotonic, ctx.deadline

    def stop() -> None:
        if cancelled():
            raise _Stop(StepCancelled(f"step {ctx.step_name!r} stopped: the run was terminated (SIGTERM)"))
        raise _Stop(StepTimeout(f"template {label}: still rendering at the step's deadline of "
                                f"{format_duration(ctx.timeout)} (a loop too large?)"))

    def on_line(frame: FrameType, event: str, arg: Any) -> Any:  # kept small: it runs for every line
        if cancelled() or clock() >= deadline:
            stop()
        return on_line

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        return on_line if frame.f_code.co_filename in filenames else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)


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
            where = f"template {label}: files.{name}"
            with os.fdopen(open_regular(Path(os.path.normpath(os.path.abspath(resolved))), where), "rb") as stream:
                values[name] = parse(stream, fmt, where)  # never through a link planted in a volume, nor a FIFO
            register_values(values[name])  # usually secrets (/secrets/app-secrets.json): masked like them
        except OSError as exc:
            raise StepFailed(f"template {label}: files.{name}: {path}: {exc.strerror}") from None
    loader: _Loader | None = None
    try:
        if spec.source is not None:
            source = ctx.resolve(spec.source)
            if not source.is_file():
                raise StepFailed(f"template {source}: no such file (is the volume mounted?)")
            try:
                loader = _Loader(source.parent, label)
            except OSError as exc:
                raise StepFailed(f"template {label}: {describe(exc.filename or source.parent, exc)}") from None
            except StepFailed as exc:  # a link on the way to the directory
                raise StepFailed(f"template {label}: {exc}") from None
            template = _environment(loader).get_template(source.name)
        else:
            template = _environment(None).from_string(spec.inline or "")
        with _watched(ctx, label, {"<template>"} if loader is None else loader.filenames):
            pieces, size = [], 0
            for piece in template.generate(values):
                size += len(piece)
                if size > MAX_OUTPUT_BYTES:
                    raise StepFailed(f"template {label}: output is larger than {MAX_OUTPUT_BYTES // (1024 * 1024)} "
                                     "MiB (a loop over a value larger than expected?); nothing was written")
                pieces.append(piece)
            return "".join(pieces)
    except _Stop as stop:
        raise stop.error from None
    except TemplateSyntaxError as exc:
        raise StepFailed(f"template {label}: syntax error at line {exc.lineno}: {exc.message}") from None
    except UndefinedError as exc:
        raise StepFailed(f"template {label}: {exc.message} (give it in vars:, secrets: or files:)") from None
    except SecurityError as exc:
        raise StepFailed(f"template {label}: refused by the sandbox: {exc}") from None
    except TemplateError as exc:
        raise StepFailed(f"template {label}: {type(exc).__name__}: {exc.message}") from None
    except (TypeError, ValueError, ArithmeticError) as exc:  # an operation in the template failed
        raise StepFailed(f"template {label}: {type(exc).__name__} while rendering") from None
    finally:
        if loader is not None:
            loader.close()


def default_mode(spec: TemplateSpec, text: bytes) -> int:
    """``mode`` if given; else 0400 for a template that read a secret (``secrets:``, ``files:`` whose values are
    treated as secrets, or an output that holds a registered secret), else 0644."""
    if spec.mode is not None:
        return spec.mode
    if spec.secrets or spec.files or _holds_secret(text.decode("utf-8", "replace")):
        return 0o400
    return 0o644


_URL_PASSWORD = re.compile(r"(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:[^@\s/]+@")
_URL_USER = re.compile(r"(?<![a-zA-Z0-9+.-])(?:[a-zA-Z][a-zA-Z0-9.-]*\+)?https?://[^:/@\s?#'\"<>]+@", re.IGNORECASE)
"""A URL's password (``postgres://app:pw@db``) and an HTTP(S) URL's token user (``https://TOKEN@host``), as
redaction finds them, but starting only where a scheme can start: redaction's own patterns try every position of
a run of letters (or of ``a.a.a.``) again, quadratic in its length: 400 KB of output on one line took 240 s."""


def _holds_secret(text: str) -> bool:
    """Whether redaction would mask something in ``text`` (a registered secret in any of its forms, a URL's
    password or token user, a credential in a query string, a ``password=``), in time linear in its length."""
    from prefect_init.runtime import redaction

    pattern = redaction.REDACTOR.pattern()
    if pattern is not None and pattern.search(text):
        return True
    return any(p.search(text) for p in (_URL_PASSWORD, _URL_USER, redaction._QUERY_SECRET,
                                        redaction._SQL_PASSWORD, redaction._KV_PASSWORD))


def write(spec: TemplateSpec, ctx: RunContext) -> tuple[Path, str, bool]:
    """Render and write one destination; (dest, sha256, whether it changed). Neither ``dest`` nor a directory
    on its way may be a link the app could have planted (:mod:`prefect_init.runtime.atomic`)."""
    text = render_text(spec, ctx).encode()
    dest = ctx.resolve(spec.dest)
    mode = default_mode(spec, text)
    digest = hashlib.sha256(text).hexdigest()
    make_parent(dest)
    try:
        with opened_dir(dest.parent) as parent:
            try:
                current = read_nofollow(parent, dest.name, dest)
            except OSError:
                current = None  # unreadable: written again below
            if current is not None and hashlib.sha256(current).hexdigest() == digest:
                fd = open_nofollow(parent, dest.name, dest)
                try:
                    if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
                        set_attributes(fd, mode)
                finally:
                    os.close(fd)
                return dest, digest, False
    except OSError as exc:
        raise write_error(exc.filename or dest, exc) from None
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
