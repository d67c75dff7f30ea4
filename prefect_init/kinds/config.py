"""The ``config`` step: configuration downloaded, checked, and swapped in whole.

.. code-block:: yaml

    - name: config
      config:
        url: http://config-server:8000/config/myapp     # http, https or file
        dest: /config/app.yaml
        format: yaml                                    # yaml | json | toml | auto (content type, then suffix)
        headers: {Authorization: {file: /secrets/config-token}}   # values are secrets
        request_timeout: 30s                            # the whole download, every redirect and byte
        max_bytes: 10MiB                                # enforced while streaming
        sha256: 3a7bd3e2...                             # optional pin
        required: [database.host, database.port]        # present and non-empty
        schema: /etc/prefect-init/config.schema.json    # JSON Schema
        mode: "0644"
        follow_redirects: false                         # to another origin (never with the headers)
        ca_cert: /etc/ssl/config-ca.pem                 # or insecure: true

The body streams into a temporary file beside ``dest`` while it is hashed and counted; it is parsed and checked
there, and only then renamed over ``dest``. Any failure leaves ``dest`` byte-for-byte as it was. An identical
file is left untouched (same mtime). Retried: connection errors, timeouts, 5xx, 429 (after ``Retry-After``).
Final: other 4xx, a parse error, a checksum, size or schema mismatch, a redirect to another origin (scheme, host,
port) unless ``follow_redirects``, a redirect from https to http whatever ``follow_redirects`` says.

The ``headers`` (credentials) go only to the origin of ``url``, and only until a redirect leaves it; another
origin gets none (the log says so). ``request_timeout`` bounds the whole download, not each read: a server that
trickles its answer fails the attempt (retried) within ``request_timeout`` of its start. See docs/hardening/http.md.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import Field

from prefect_init.errors import RetryableError, StepFailed
from prefect_init.runtime.atomic import AtomicFile, make_parent, open_regular, write_error
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.documents import Format, check_document, guess_format, load_schema, parse_file
from prefect_init.runtime.httpguard import (
    Deadline,
    DeadlinePassed,
    Origin,
    downgrade,
    origin,
    origin_text,
    other_origin,
    redirect_target,
)
from prefect_init.runtime.redaction import redact, register_secret
from prefect_init.runtime.values import resolve_value
from prefect_init.spec.durations import Duration, format_duration
from prefect_init.spec.model import FromFile, Mode, Size, StepBase, StrictModel

MAX_REDIRECTS = 10


class ConfigSpec(StrictModel):
    url: str = Field(pattern=r"^(https?|file)://")
    dest: str
    format: Literal["yaml", "json", "toml", "auto"] = "auto"
    headers: dict[str, str | FromFile] = Field(default_factory=dict)
    request_timeout: Duration = 30.0
    max_bytes: Size = 10 * 1024 * 1024
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    required: list[str] = Field(default_factory=list)
    schema_: str | None = Field(default=None, alias="schema")
    mode: Mode = 0o644
    follow_redirects: bool = False
    ca_cert: str | None = None
    insecure: bool = False


class Step(StepBase):
    kind = "config"
    config: ConfigSpec

    def describe(self) -> str:
        return f"config: {redact(self.config.url)} -> {self.config.dest}"


class _Sink:
    """Writes the body to the temporary file, hashing and counting as it goes."""

    def __init__(self, out: IO[bytes], max_bytes: int, where: str, dest: Path) -> None:
        self.out, self.max_bytes, self.where, self.dest = out, max_bytes, where, dest
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise StepFailed(f"{self.where}: larger than max_bytes ({self.max_bytes} bytes); nothing was written")
        self.hash.update(chunk)
        try:
            self.out.write(chunk)
        except OSError as exc:  # the destination's volume, not the source
            raise write_error(self.dest, exc) from None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    parsed = email.utils.parsedate_to_datetime(value)
    return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _refusal(where: str, current: httpx.URL, target: httpx.URL, first: Origin, spec: ConfigSpec,
             left: bool) -> str | None:
    """Why a redirect from ``current`` to ``target`` is not followed (final), or None to follow it."""
    if target.scheme not in ("http", "https"):
        return (f"{where}: redirected to a {target.scheme or 'scheme-less'} URL: refused, only http and https are "
                "followed")
    if downgrade(current, target):
        return (f"{where}: redirected from https to http ({origin_text(origin(target))}): refused, the answer and "
                "the next request would travel in cleartext (point url: at the https address that serves it)")
    if origin(target) != first and not left and not spec.follow_redirects:
        return (f"{where}: redirected to {other_origin(first, origin(target))}; set follow_redirects: true to "
                "allow it (the step's headers are never sent there)")
    return None


def _fetch_http(spec: ConfigSpec, headers: dict[str, str], sink: _Sink, ctx: RunContext, where: str) -> str | None:
    """Stream the body into ``sink``; return the content type.

    Redirects are followed here, hop by hop (httpx follows none): the step's headers go only to the origin
    (scheme, host, port) of ``url``, and only as long as no redirect has left it; https is never followed to
    http. One deadline covers the whole download: ``request_timeout`` from the first request, or the step's
    own deadline if sooner."""
    url = first_url = httpx.URL(spec.url)
    first = origin(first_url)
    left = False  # a redirect took us off the first origin: the headers are not sent again, even back there
    verify: Any = str(ctx.resolve(spec.ca_cert)) if spec.ca_cert else not spec.insecure
    deadline = Deadline(min(ctx.deadline, time.monotonic() + spec.request_timeout))

    def too_slow() -> RetryableError:
        ctx.check()  # the step's own deadline came first, or SIGTERM: say that instead
        got = f"{sink.size} bytes of the body had arrived" if sink.size else "no complete answer had arrived"
        return RetryableError(f"{where}: the download did not finish within request_timeout "
                              f"({format_duration(spec.request_timeout)}); {got}: the server or the network "
                              "is too slow")

    with deadline, httpx.Client(follow_redirects=False, verify=verify) as client:
        for _ in range(MAX_REDIRECTS + 1):
            sent = headers if not left and origin(url) == first else {}
            try:
                with client.stream("GET", url, headers=sent, timeout=deadline.timeout(),
                                   extensions=deadline.extensions()) as response:
                    target = redirect_target(response)
                    if target is not None:
                        refused = _refusal(where, url, target, first, spec, left)
                        if refused:
                            raise StepFailed(refused)
                        if origin(target) != first and not left:
                            left = True
                            there = origin_text(origin(target))
                            ctx.log.info(redact(f"{where}: redirected to another origin ({there}); following it "
                                                "without the step's headers"))
                        url = target
                        continue
                    status = response.status_code
                    if status == 429 or status >= 500:
                        raise RetryableError(f"{where}: HTTP {status}",
                                             retry_after=_retry_after(response.headers.get("retry-after")))
                    if status >= 400 or status < 200:
                        raise StepFailed(f"{where}: HTTP {status} (not retried: check the URL and credentials)")
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > spec.max_bytes:
                        raise StepFailed(f"{where}: larger than max_bytes ({spec.max_bytes} bytes); "
                                         "nothing was written")
                    for chunk in deadline.chunks(response, ctx.check):
                        sink.write(chunk)
                    return response.headers.get("content-type")
            except (DeadlinePassed, httpx.TimeoutException):
                raise too_slow() from None
            except httpx.TransportError as exc:
                if deadline.passed():  # the deadline shut the connection under a read
                    raise too_slow() from None
                text = str(exc) or type(exc).__name__
                if "CERTIFICATE_VERIFY_FAILED" in text:
                    raise StepFailed(f"{where}: TLS failed, the server's certificate is not trusted "
                                     "(set ca_cert: to its CA)") from None
                reason = "connection refused" if "refused" in text.lower() else text.splitlines()[0][:200]
                raise RetryableError(f"{where}: {reason}") from None
    raise StepFailed(f"{where}: more than {MAX_REDIRECTS} redirects")


_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _fetch_file(spec: ConfigSpec, sink: _Sink, where: str) -> None:
    path = Path(os.path.normpath(unquote(urlsplit(spec.url).path)))
    try:
        with os.fdopen(open_regular(path, where), "rb") as source:
            while chunk := source.read(64 * 1024):
                sink.write(chunk)
    except OSError as exc:
        raise StepFailed(f"{where}: {exc.strerror}") from None


def _same_content(path: Path, digest: str) -> bool:
    """Whether ``path`` is a regular file holding ``digest``; a link or a FIFO there is never read (nor waited
    on): the write that follows refuses a link in words."""
    try:
        fd = os.open(path, _READ_FLAGS | os.O_NOFOLLOW)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        return hashlib.file_digest(handle, "sha256").hexdigest() == digest


def _inputs(spec: ConfigSpec, ctx: RunContext) -> tuple[dict[str, str], Any]:
    """The headers (read now, registered as secrets) and the schema, before anything is fetched or created."""
    headers = {key: resolve_value(value, ctx, f"header {key}") for key, value in spec.headers.items()}
    for value in headers.values():  # inline values too: they usually come from ${TOKEN}
        register_secret(value)
    return headers, load_schema(ctx.resolve(spec.schema_)) if spec.schema_ else None


def _fetch_and_check(spec: ConfigSpec, ctx: RunContext, inputs: tuple[dict[str, str], Any], handle: IO[bytes],
                     dest: Path, read: Callable[[Format, str], Any]) -> tuple[_Sink, str]:
    """Stream the document into ``handle`` and check it (checksum, format, required keys, schema) as ``read``
    gives it back; (what was streamed, its format). Every failure is a step error; ``dest`` is not touched."""
    where = f"config {redact(spec.url)}"
    headers, schema = inputs
    sink = _Sink(handle, spec.max_bytes, where, dest)
    content_type = None if spec.url.startswith("file://") else _fetch_http(spec, headers, sink, ctx, where)
    if spec.url.startswith("file://"):
        _fetch_file(spec, sink, where)
    try:
        handle.flush()
    except OSError as exc:
        raise write_error(dest, exc) from None
    digest = sink.hash.hexdigest()
    if spec.sha256 and digest != spec.sha256.lower():
        raise StepFailed(f"{where}: sha256 mismatch: expected {spec.sha256.lower()}, got {digest}")
    fmt = spec.format if spec.format != "auto" else guess_format(spec.url, str(dest), content_type=content_type)
    if fmt is None:
        raise StepFailed(f"{where}: cannot tell the format from the content type or the names; set format:")
    check_document(read(fmt, where), where, spec.required, schema)
    return sink, fmt


def run(step: Step, ctx: RunContext) -> str:
    spec = step.config
    dest = ctx.resolve(spec.dest)
    inputs = _inputs(spec, ctx)
    make_parent(dest)
    with AtomicFile(dest, spec.mode) as out:
        sink, fmt = _fetch_and_check(spec, ctx, inputs, out.handle, dest,
                                     lambda fmt, where: parse_file(out.temp_path, fmt, where))
        digest = sink.hash.hexdigest()
        ctx.output("sha256", digest)
        ctx.output("bytes", sink.size)
        if _same_content(dest, digest):
            if dest.stat().st_mode & 0o7777 != spec.mode:
                dest.chmod(spec.mode)
            ctx.log.info(f"{dest}: unchanged ({sink.size} bytes, sha256 {digest[:12]})")
            return "unchanged"
        out.commit()
    ctx.log.info(f"{dest}: written ({sink.size} bytes, {fmt}, sha256 {digest[:12]})")
    return f"written {sink.size} bytes"


def probe(step: Step, ctx: RunContext) -> Any:
    """The document fetched into memory (bounded by ``max_bytes``) and checked as ``run`` would; ``dest`` is
    never written."""
    import io

    from prefect_init.runtime.documents import parse
    from prefect_init.runtime.probe import CHANGE, OK, Finding

    spec = step.config
    dest = ctx.resolve(spec.dest)
    buffer = io.BytesIO()

    def read(fmt: Format, where: str) -> Any:
        buffer.seek(0)
        return parse(buffer, fmt, where)

    sink, fmt = _fetch_and_check(spec, ctx, _inputs(spec, ctx), buffer, dest, read)
    if _same_content(dest, sink.hash.hexdigest()):
        return Finding(OK, [f"{sink.size} bytes, valid, {dest} already holds it"])
    return Finding(CHANGE, [f"write {dest} ({sink.size} bytes, valid {fmt})"])
