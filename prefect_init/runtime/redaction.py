"""The one place that knows this run's secret values and masks them.

Every log line, error message, status file and artifact goes through :func:`redact`. Step kinds register
the secrets they read (file contents, Vault values, tokens, header values) with :func:`register_secret`
*before* anything can log them. Passwords in URLs and DSNs (``scheme://user:password@host``, libpq
``password=...``) are masked by pattern whether or not they were registered, and so are a token written as an
HTTP(S) URL's user (``https://TOKEN@host``), a query string's credential (``?access_token=...``,
``&X-Amz-Signature=...``: a parameter named like a token, key, signature, password or secret) and what a YAML
error echoes of the document (a tag, a tag handle, an alias).

A registered value is masked in every form it takes on its way to a log line: as it is, escaped in a JSON or a
Python string (``a\\"b``), quoted for a shell (``'it'\\''s'``) or SQL (``'it''s'``), URL-encoded (``a%20b``,
``a+b``). A number (a Vault value can be one) is registered by its text and masked only where it stands whole, not
inside a longer number. ``VAULT_TOKEN``, ``PREFECT_API_KEY`` and ``PREFECT_API_AUTH_STRING`` from the environment
are registered at the command line's start (:func:`register_environment`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import threading
import urllib.parse

MASK = "****"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked by value (masking every ``a`` would garble logs); URL passwords still are."""

_URL_PASSWORD = re.compile(r"(?P<pre>(?<![a-zA-Z0-9+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<post>@)")
"""The lookbehind starts a scheme only where one can start: without it, a long run of scheme characters
(``a.a.a.``: a line of output) is scanned again from each position, quadratic (200 KB took 100 s)."""
_KV_PASSWORD = re.compile(r"(?P<pre>(?<![?&;])\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.IGNORECASE)
_URL_USER = re.compile(r"(?P<pre>(?<![a-zA-Z0-9+.-])(?:[a-zA-Z][a-zA-Z0-9.-]*\+)?https?://)(?P<user>[^:/@\s?#'\"<>]+)(?P<post>@)",
                       re.IGNORECASE)
"""An HTTP(S) URL's user without a password: how a token is often given (``https://TOKEN@github.com/...``).
Other schemes' users (``ssh://git@``, ``postgres://app@``) are names, kept."""
_QUERY_SECRET = re.compile(r"(?P<pre>[?&;][\w.-]*(?:token|key|sig|signature|password|passwd|secret|credential)=)"
                           r"(?P<value>[^&#;\s'\"<>]+)", re.IGNORECASE)
"""A query string's parameter named like a credential: ``access_token``, ``private_token``, ``api_key``,
``apikey``, ``key``, ``sig``, ``X-Amz-Signature``, ``X-Amz-Security-Token``, ``client_secret``, ``password``."""
_SQL_PASSWORD = re.compile(r"(?P<pre>\b(?:ENCRYPTED\s+)?PASSWORD\s+)'(?:[^'\n]|'')*'", re.IGNORECASE)
"""A SQL statement's literal password (``CREATE ROLE app LOGIN PASSWORD 'pw'``), as ``psql -e``, a migration
tool or PostgreSQL's own error context echoes it."""
_YAML_ECHO = re.compile(r"(?P<pre>(?:for the tag|undefined tag handle|undefined alias) ')(?P<value>[^'\n]*)(?=')")
"""What PyYAML's errors echo of a document (``could not determine a constructor for the tag '!...'``): a secrets
file's text, before any of its values could be registered (the parse failed)."""
ENVIRONMENT_SECRETS = ("VAULT_TOKEN", "PREFECT_API_KEY", "PREFECT_API_AUTH_STRING")
"""Variables whose values are secrets wherever they come from: registered at the command line's start."""


def forms(value: str) -> set[str]:
    """``value`` as it may be written on its way to a log line: as it is, escaped in a JSON or a Python string,
    quoted for a POSIX shell (inside single quotes, ``'`` is ``'\\''`` or ``'"'"'``), quoted for SQL or YAML
    (``'`` doubled: what a PostgreSQL error quoting a statement shows), URL-encoded."""
    out = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1],
           value.replace("'", "'\\''"), value.replace("'", "'\"'\"'"), shlex.quote(value), value.replace("'", "''"),
           urllib.parse.quote(value, safe=""), urllib.parse.quote(value), urllib.parse.quote_plus(value)}
    return out


class Redactor:
    """A set of secret values and the regular expression that masks all of them at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}
        """Each text to mask -> its part of the one pattern (a number's is bounded by non-digits)."""
        self._pattern: re.Pattern[str] | None = None
        self._stale = False

    def register(self, value: str | bytes | int | float | None) -> None:
        if value is None or isinstance(value, bool):
            return
        if isinstance(value, int | float):
            text = str(value)
            if len(text) >= MIN_SECRET_LENGTH:
                self._add({text: rf"(?<![0-9.]){re.escape(text)}(?![0-9])"})
            return
        if isinstance(value, bytes):
            try:
                value = value.decode()
            except UnicodeDecodeError:
                return
        candidates = {value, value.strip()}
        # A multi-line secret (a PEM key) is also masked line by line, since logs split lines.
        candidates.update(line.strip() for line in value.splitlines())
        wanted = {form for c in candidates if len(c) >= MIN_SECRET_LENGTH for form in forms(c)}
        self._add({form: re.escape(form) for form in wanted})

    def _add(self, pieces: dict[str, str]) -> None:
        with self._lock:
            new = {text: piece for text, piece in pieces.items() if text not in self._values}
            if new:
                self._values.update(new)
                self._stale = True  # compiled at the next redact: a burst of values (a Vault secret's) is one compile

    def pattern(self) -> re.Pattern[str] | None:
        """The one pattern of every registered value's every form, compiled again only after new ones came."""
        if self._stale:
            with self._lock:
                if self._stale:
                    ordered = sorted(self._values, key=len, reverse=True)  # the longest form first: all is masked
                    self._pattern = re.compile("|".join(self._values[text] for text in ordered))
                    self._stale = False
        return self._pattern

    def redact(self, text: str) -> str:
        pattern = self.pattern()
        if pattern is not None:
            text = pattern.sub(MASK, text)
        text = _URL_PASSWORD.sub(lambda m: f"{m['pre']}{MASK}{m['post']}", text)
        text = _URL_USER.sub(lambda m: f"{m['pre']}{MASK}{m['post']}", text)
        text = _QUERY_SECRET.sub(lambda m: f"{m['pre']}{MASK}", text)
        text = _YAML_ECHO.sub(lambda m: f"{m['pre']}{MASK}", text)
        text = _SQL_PASSWORD.sub(lambda m: f"{m['pre']}'{MASK}'", text)
        return _KV_PASSWORD.sub(lambda m: f"{m['pre']}{MASK}", text)


REDACTOR = Redactor()


def register_secret(value: str | bytes | int | float | None) -> None:
    """Mark a value as secret for the rest of this process: it is masked everywhere from now on."""
    REDACTOR.register(value)


def register_environment(names: tuple[str, ...] = ENVIRONMENT_SECRETS) -> None:
    """Register the values of ``names`` in this process's environment (when set) as secrets."""
    for name in names:
        register_secret(os.environ.get(name))


def register_values(value: object) -> None:
    """Register every string and number inside ``value`` (a parsed document: dicts, lists, strings, numbers) as
    a secret."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        register_secret(value)
    elif isinstance(value, dict):
        for item in value.values():
            register_values(item)
    elif isinstance(value, list):
        for item in value:
            register_values(item)


def redact(text: str) -> str:
    """Mask every registered secret and every URL / DSN password in ``text``."""
    return REDACTOR.redact(text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the formatted message (and exception text) of every record it sees.

    It is attached to *handlers*, so it also covers records that propagate from other loggers, Prefect's
    API log handler included.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            text = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = redact(text).rstrip("\n")
            record.exc_info = None
        return True


def install_logging_filter() -> None:
    """Attach :class:`RedactingFilter` to every handler known to :mod:`logging` right now."""
    handlers: list[logging.Handler] = list(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.extend(logger.handlers)
    for handler in handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
