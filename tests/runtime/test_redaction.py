"""Secrets never reach a log line, an error or the status file: proven with canary values."""

from __future__ import annotations

import logging
from pathlib import Path

from prefect_init.runtime.redaction import MASK, RedactingFilter, Redactor, redact, register_secret
from tests.helpers import clean_env, run_cli, write_spec

CANARY = "canary-7f3a9c-s3cr3t"


def test_redactor_masks_registered_values_longest_first() -> None:
    r = Redactor()
    r.register("abcd")
    r.register("abcdefgh")
    assert r.redact("x abcdefgh y abcd z") == f"x {MASK} y {MASK} z"


def test_redactor_masks_each_line_of_a_multiline_secret() -> None:
    r = Redactor()
    r.register("-----BEGIN KEY-----\nAAAAsecretline\n-----END KEY-----\n")
    assert "AAAAsecretline" not in r.redact("log: AAAAsecretline")


def test_url_and_dsn_passwords_are_masked_unregistered() -> None:
    assert redact("postgres://app:hunter2@db:5432/app") == f"postgres://app:{MASK}@db:5432/app"
    assert redact("redis://:pw1234@redis:6379/0") == f"redis://:{MASK}@redis:6379/0"
    assert redact("host=db password=hunter2 user=app") == f"host=db password={MASK} user=app"
    assert redact("http://example.com:8080/path") == "http://example.com:8080/path"


def test_short_values_are_not_masked_by_value() -> None:
    r = Redactor()
    r.register("abc")
    assert r.redact("abc") == "abc"


def test_logging_filter_redacts_args_and_exceptions() -> None:
    register_secret("filter-canary-123")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "value %s", ("filter-canary-123",), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == f"value {MASK}"
    try:
        raise ValueError("boom filter-canary-123")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    RedactingFilter().filter(record)
    assert record.exc_text is not None and "filter-canary-123" not in record.exc_text


def test_canary_from_env_file_never_leaks(tmp_path: Path) -> None:
    secret_file = tmp_path / "token"
    secret_file.write_text(CANARY + "\n")
    spec = write_spec(tmp_path, f"""
        version: 1
        name: canary
        status_file: status.json
        steps:
          - name: uses-secret
            command: [sh, -c, 'echo "token is $TOKEN"; echo "url https://u:$TOKEN@h/"']
            env: {{TOKEN: {{file: {secret_file}}}}}
          - name: fails-with-secret
            retries: 1
            retry_delay: 10ms
            command: [sh, -c, 'echo "bad token $TOKEN" >&2; exit 1']
            env: {{TOKEN: {{file: {secret_file}}}}}
    """)
    term = tmp_path / "termination-log"
    term.write_text("")
    result = run_cli("run", str(spec), env=clean_env(PREFECT_INIT_TERMINATION_LOG=str(term)))
    assert result.code == 1
    assert "token is ****" in result.stderr  # the output is there, masked
    assert "bad token ****" in result.stderr
    status = (tmp_path / "status.json").read_text()
    assert "bad token ****" in status
    for text in (result.stdout, result.stderr, status, term.read_text()):
        assert CANARY not in text
