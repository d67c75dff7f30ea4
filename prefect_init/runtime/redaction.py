"""The one place that knows this run's secret values and masks them.

Every log line, error message, status file and artifact goes through :func:`redact`. Step kinds register
the secrets they read (file contents, Vault values, tokens, header values) with :func:`register_secret`
*before* anything can log them. Passwords in URLs and DSNs (``scheme://user:password@host``, libpq
``password=...``) are masked by pattern whether or not they were registered.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "****"
MIN_SECRET_LENGTH = 4
"""Shorter values are not masked by value (masking every ``a`` would garble logs); URL passwords still are."""

_URL_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?P<post>@)")
_KV_PASSWORD = re.compile(r"(?P<pre>\bpassword\s*=\s*)(?P<pw>'(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.IGNORECASE)


class Redactor:
    """A set of secret values and the regular expression that masks all of them at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def register(self, value: str | bytes | None) -> None:
        if value is None:
            return
        if isinstance(value, bytes):
            try:
                value = value.decode()
            except UnicodeDecodeError:
                return
        candidates = {value, value.strip()}
        # A multi-line secret (a PEM key) is also masked line by line, since logs split lines.
        candidates.update(line.strip() for line in value.splitlines())
        with self._lock:
            new = {c for c in candidates if len(c) >= MIN_SECRET_LENGTH} - self._values
            if not new:
                return
            self._values |= new
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def redact(self, text: str) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        text = _URL_PASSWORD.sub(lambda m: f"{m['pre']}{MASK}{m['post']}", text)
        return _KV_PASSWORD.sub(lambda m: f"{m['pre']}{MASK}", text)


REDACTOR = Redactor()


def register_secret(value: str | bytes | None) -> None:
    """Mark a value as secret for the rest of this process: it is masked everywhere from now on."""
    REDACTOR.register(value)


def register_values(value: object) -> None:
    """Register every string inside ``value`` (a parsed document: dicts, lists, strings) as a secret."""
    if isinstance(value, str):
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
