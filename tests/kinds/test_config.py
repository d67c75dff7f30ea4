"""The config step through the CLI against real HTTP servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli
from tests.httpservers import sequence, serve

GOOD_YAML = b"database:\n  host: db\n  port: 5432\nfeature: true\n"
PREVIOUS = b"database:\n  host: old-db\n  port: 5432\n"


def _spec(tmp_path: Path, config: dict[str, Any], retries: int = 2, timeout: str = "10s") -> Path:
    path = tmp_path / "init.yaml"
    step = {"name": "config", "timeout": timeout, "retries": retries, "retry_delay": "50ms", "config": config}
    path.write_text(json.dumps({"version": 1, "name": "cfg", "status_file": "status.json", "steps": [step]}))
    return path  # JSON is YAML


def _step(tmp_path: Path) -> dict[str, Any]:
    step: dict[str, Any] = json.loads((tmp_path / "status.json").read_text())["steps"][0]
    return step


def _previous(tmp_path: Path) -> Path:
    dest = tmp_path / "conf" / "app.yaml"
    dest.parent.mkdir()
    dest.write_bytes(PREVIOUS)
    return dest


def _assert_untouched(dest: Path) -> None:
    assert dest.read_bytes() == PREVIOUS
    assert not [p for p in dest.parent.iterdir() if p.name != dest.name]  # no temporary file left


@pytest.mark.parametrize(("body", "content_type", "path", "fmt"), [
    (GOOD_YAML, "application/yaml", "/config/app", "yaml"),
    (json.dumps({"database": {"host": "db", "port": 5432}}).encode(), "application/json", "/config/app", "json"),
    (b'[database]\nhost = "db"\nport = 5432\n', "text/plain", "/config/app.toml", "toml"),
])
def test_good_documents_are_written(tmp_path: Path, body: bytes, content_type: str, path: str, fmt: str) -> None:
    with sequence((200, body, {"Content-Type": content_type})) as server:
        spec = _spec(tmp_path, {"url": server.url(path), "dest": "out/app.conf", "required": ["database.host"],
                                "mode": "0640"})
        result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    dest = tmp_path / "out/app.conf"
    assert dest.read_bytes() == body
    assert dest.stat().st_mode & 0o777 == 0o640
    assert f"{fmt}, sha256" in result.stderr


def test_500_then_200_is_retried(tmp_path: Path) -> None:
    with sequence((500, b"oops", {}), (200, GOOD_YAML, {})) as server:
        spec = _spec(tmp_path, {"url": server.url("/c.yaml"), "dest": "app.yaml"})
        result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert len(server.requests) == 2
    assert _step(tmp_path)["attempts"] == 2


def test_429_honours_retry_after(tmp_path: Path) -> None:
    with sequence((429, b"slow down", {"Retry-After": "1"}), (200, GOOD_YAML, {})) as server:
        spec = _spec(tmp_path, {"url": server.url("/c.yaml"), "dest": "app.yaml"})
        result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert server.times[1] - server.times[0] >= 0.95  # not the 50 ms back-off


def test_404_is_final_one_request(tmp_path: Path) -> None:
    dest = _previous(tmp_path)
    with sequence((404, b"no", {})) as server:
        result = run_cli("run", str(_spec(tmp_path, {"url": server.url("/c.yaml"), "dest": str(dest)}, retries=3)))
    assert result.code == 1
    assert len(server.requests) == 1
    assert "HTTP 404 (not retried" in _step(tmp_path)["error"]
    _assert_untouched(dest)


@pytest.mark.parametrize(("answer", "extra", "message"), [
    ((200, b"database: [unclosed\n", {}), {}, "not valid YAML"),
    ((200, GOOD_YAML * 100, {}), {"max_bytes": 1000}, "larger than max_bytes (1000 bytes)"),
    ((200, GOOD_YAML, {}), {"sha256": "0" * 64}, f"sha256 mismatch: expected {'0' * 64}, got "
                                                 f"{hashlib.sha256(GOOD_YAML).hexdigest()}"),
    ((200, GOOD_YAML, {}), {"required": ["database.host", "database.password", "cache.url"]},
     "missing required keys: database.password, cache.url"),
])
def test_bad_bodies_fail_and_leave_the_previous_file(tmp_path: Path, answer: Any, extra: dict[str, Any],
                                                    message: str) -> None:
    dest = _previous(tmp_path)
    with sequence(answer) as server:
        result = run_cli("run", str(_spec(tmp_path, {"url": server.url("/c.yaml"), "dest": str(dest), **extra})))
    assert result.code == 1
    assert message in _step(tmp_path)["error"]
    assert len(server.requests) == 1  # final, not retried
    _assert_untouched(dest)


def test_body_over_max_bytes_without_content_length_stops_streaming(tmp_path: Path) -> None:
    dest = _previous(tmp_path)
    big = b"x: " + b"y" * 200_000 + b"\n"

    def chunked(n: int) -> Any:
        return (200, big, {"Content-Length": None})  # no length: the limit is enforced while streaming

    with serve(chunked) as server:
        result = run_cli("run", str(_spec(tmp_path, {"url": server.url("/c.yaml"), "dest": str(dest),
                                                     "max_bytes": "64KiB"})))
    assert result.code == 1
    assert "larger than max_bytes (65536 bytes)" in _step(tmp_path)["error"]
    _assert_untouched(dest)


def test_schema_violation_names_the_place_not_the_value(tmp_path: Path) -> None:
    dest = _previous(tmp_path)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps({"type": "object", "required": ["database", "replicas"], "properties": {
        "database": {"type": "object", "properties": {"port": {"type": "string"}}}}}))
    body = b"database:\n  host: db\n  port: 5432\nsecret_thing: value-canary-1\n"
    with sequence((200, body, {})) as server:
        result = run_cli("run", str(_spec(tmp_path, {"url": server.url("/c.yaml"), "dest": str(dest),
                                                     "schema": str(schema)})))
    assert result.code == 1
    error = _step(tmp_path)["error"]
    assert "(top level): missing required keys: replicas" in error
    assert 'database.port: must satisfy type "string"' in error
    assert "5432" not in error and "value-canary-1" not in result.output
    _assert_untouched(dest)


def test_slow_server_past_the_deadline(tmp_path: Path) -> None:
    dest = _previous(tmp_path)
    with sequence((200, GOOD_YAML, {}), delay=5) as server:
        result = run_cli("run", str(_spec(tmp_path, {"url": server.url("/c.yaml"), "dest": str(dest)},
                                          retries=0, timeout="1s")))
    assert result.code == 1
    # the step's own duration (not the wall clock, which counts the interpreter's start on a busy machine):
    # it ends at its 1 s deadline, not when the 5 s server finishes
    assert _step(tmp_path)["duration_s"] < 3, _step(tmp_path)
    assert "timed out" in _step(tmp_path)["error"]
    _assert_untouched(dest)


def test_redirect_to_another_host_only_when_allowed(tmp_path: Path) -> None:
    with sequence((200, GOOD_YAML, {})) as target:
        other_host = f"http://localhost:{target.port}/real.yaml"  # localhost is another host than 127.0.0.1
        with sequence((302, b"", {"Location": other_host})) as redirector:
            dest = _previous(tmp_path)
            spec = {"url": redirector.url("/c.yaml"), "dest": str(dest), "headers": {"Authorization": "Bearer t-1"}}
            refused = run_cli("run", str(_spec(tmp_path, spec)))
            assert refused.code == 1
            assert "redirected to another host (localhost); set follow_redirects: true" in _step(tmp_path)["error"]
            _assert_untouched(dest)
            assert not target.requests
            allowed = run_cli("run", str(_spec(tmp_path, {**spec, "follow_redirects": True})))
    assert allowed.code == 0, allowed.output
    assert dest.read_bytes() == GOOD_YAML
    assert "Authorization" not in target.requests[0][1]  # the spec's headers stay with the original host


def test_same_host_redirect_is_followed(tmp_path: Path) -> None:
    def script(n: int) -> Any:
        return (301, b"", {"Location": "/moved.yaml"}) if n == 0 else (200, GOOD_YAML, {})

    with serve(script) as server:
        result = run_cli("run", str(_spec(tmp_path, {"url": server.url("/c.yaml"), "dest": "app.yaml"})))
    assert result.code == 0, result.output
    assert [p for p, _ in server.requests] == ["/c.yaml", "/moved.yaml"]


def test_identical_file_is_left_untouched(tmp_path: Path) -> None:
    dest = tmp_path / "app.yaml"
    with sequence((200, GOOD_YAML, {})) as server:
        spec = _spec(tmp_path, {"url": server.url("/c.yaml"), "dest": str(dest)})
        assert run_cli("run", str(spec)).code == 0
        os.utime(dest, (1_000_000, 1_000_000))
        again = run_cli("run", str(spec))
    assert again.code == 0
    assert "unchanged" in again.stderr
    assert dest.stat().st_mtime == 1_000_000


def test_header_from_file_is_sent_and_masked(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("Bearer header-canary-9911\n")
    with sequence((401, b"who are you", {})) as server:
        spec = _spec(tmp_path, {"url": server.url("/c.yaml?x=1"), "dest": "app.yaml",
                                "headers": {"Authorization": {"file": str(token)}}})
        result = run_cli("run", str(spec))
    assert server.requests[0][1]["Authorization"] == "Bearer header-canary-9911"
    assert result.code == 1
    scanned = result.output + (tmp_path / "status.json").read_text()
    assert "HTTP 401" in result.stderr and "HTTP 401" in scanned  # the failure is in what is scanned
    assert "header-canary-9911" not in scanned


def test_inline_header_values_are_registered_as_secrets(tmp_path: Path) -> None:
    """A header written inline (usually from ${TOKEN}) is masked from then on, like one read from a file."""
    import threading
    import time as clock

    from prefect_init.errors import StepError
    from prefect_init.kinds import config
    from prefect_init.run.reporter import PlainReporter
    from prefect_init.runtime.context import RunContext
    from prefect_init.runtime.redaction import MASK, redact

    canary = "inline-header-canary-8080"
    assert redact(canary) == canary
    with sequence((500, b"down", {})) as server:
        step = config.Step.model_validate({"name": "c", "config": {"url": server.url("/c.yaml"), "dest": "a.yaml",
                                                                     "headers": {"X-Token": canary}}})
        ctx = RunContext("c", clock.monotonic() + 5, 5, threading.Event(), PlainReporter().logger_for("c"), tmp_path)
        with pytest.raises(StepError):
            config.run(step, ctx)
    assert server.requests[0][1]["X-Token"] == canary
    assert redact(f"sent {canary}") == f"sent {MASK}"


def test_file_url(tmp_path: Path) -> None:
    source = tmp_path / "source.json"
    source.write_text('{"a": {"b": 1}}')
    result = run_cli("run", str(_spec(tmp_path, {"url": f"file://{source}", "dest": "out.json",
                                                 "required": ["a.b"]})))
    assert result.code == 0, result.output
    assert (tmp_path / "out.json").read_text() == '{"a": {"b": 1}}'


def test_unknown_format_is_final(tmp_path: Path) -> None:
    with sequence((200, GOOD_YAML, {"Content-Type": "text/plain"})) as server:
        result = run_cli("run", str(_spec(tmp_path, {"url": server.url("/config"), "dest": "app.conf"})))
    assert result.code == 1
    assert "cannot tell the format" in _step(tmp_path)["error"]


def test_https_with_ca_cert_and_untrusted_is_final(tmp_path: Path, tls_ca: Any) -> None:
    _, pem, cert = tls_ca
    with serve(lambda n: (200, GOOD_YAML, {}), tls=cert) as server:
        trusted = run_cli("run", str(_spec(tmp_path, {"url": server.url("/c.yaml"), "dest": "a.yaml",
                                                      "ca_cert": str(pem)})))
        assert trusted.code == 0, trusted.output
        untrusted = run_cli("run", str(_spec(tmp_path, {"url": server.url("/c.yaml"), "dest": "b.yaml"}, retries=3)))
    assert untrusted.code == 1
    error = _step(tmp_path)["error"]
    assert error.endswith("TLS failed, the server's certificate is not trusted (set ca_cert: to its CA)"), error
    assert _step(tmp_path)["attempts"] == 1
    assert not (tmp_path / "b.yaml").exists()
