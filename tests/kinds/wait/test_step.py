"""The wait step against real servers on 127.0.0.1, through the CLI."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.helpers import run_cli, run_cli_reacting
from tests.httpservers import black_hole, sequence, serve
from tests.pg import PASSWORD


def _spec(tmp_path: Path, targets: str, timeout: str = "20s", extra: str = "") -> Path:
    head = ["version: 1", "name: waiting", "status_file: status.json", "steps:", "  - name: deps",
            f"    timeout: {timeout}", "    retries: 0"] + ([f"    {extra.strip()}"] if extra else []) + ["    wait:"]
    path = tmp_path / "init.yaml"
    path.write_text("\n".join(head) + "\n" + targets + "\n")
    return path


def _step(tmp_path: Path) -> dict[str, Any]:
    step: dict[str, Any] = json.loads((tmp_path / "status.json").read_text())["steps"][0]
    return step


def _targets(*lines: str) -> str:
    return "\n".join(f"      {line}" for line in lines)


def test_postgres_ready(tmp_path: Path, pg: Any) -> None:
    spec = _spec(tmp_path, _targets(f"- postgres: {pg.dsn}", "  sql: SELECT count(*) FROM pg_class"))
    result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert f"ready: postgresql://postgres:****@127.0.0.1:{pg.port}/postgres (1 attempt," in result.stderr
    assert PASSWORD not in result.output


def test_postgres_started_after_the_wait_began(tmp_path: Path, pg_factory: Any) -> None:
    cluster = pg_factory(start=False)
    spec = _spec(tmp_path, _targets(f"- postgres: {cluster.dsn}"))
    # the server starts once the wait has said it found it down: the wait saw the "before" state, no timer
    result = run_cli_reacting("run", str(spec), on={"waiting for postgresql://": cluster.start}, timeout=60)
    stderr = result.stderr
    assert result.code == 0, stderr
    assert "waiting for postgresql://postgres:****@" in stderr and ": connection refused" in stderr
    assert _step(tmp_path)["status"] == "succeeded"
    assert PASSWORD not in stderr


def test_postgres_wrong_password_is_not_ready_and_masked(tmp_path: Path, pg: Any) -> None:
    dsn = pg.dsn.replace(PASSWORD, "wrong-password-123")
    spec = _spec(tmp_path, _targets(f"- postgres: {dsn}"), timeout="1s")
    result = run_cli("run", str(spec))
    assert result.code == 1
    error = _step(tmp_path)["error"]
    assert re.search(r'postgres:\*\*\*\*@127\.0\.0\.1:\d+/postgres: password authentication failed for user '
                     r'"postgres" \(\d+ attempts? over 1\.0 s\)', error), error
    assert "wrong-password-123" not in result.output


def test_redis_with_and_without_password(tmp_path: Path, redis_factory: Any) -> None:
    open_redis = redis_factory()
    locked = redis_factory(password="redis-secret-77")
    spec = _spec(tmp_path, _targets(f"- redis: {open_redis.url}", f"- redis: {locked.url}"))
    result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert "redis-secret-77" not in result.output
    assert f"ready: redis://:****@127.0.0.1:{locked.port}/0" in result.stderr


def test_redis_auth_error_counts_as_not_ready(tmp_path: Path, redis_factory: Any) -> None:
    locked = redis_factory(password="redis-secret-77")
    spec = _spec(tmp_path, _targets(f"- redis: redis://:wrong-pass-1@127.0.0.1:{locked.port}/0"), timeout="1s")
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert "authentication failed" in _step(tmp_path)["error"] or "WRONGPASS" in _step(tmp_path)["error"]
    assert "wrong-pass-1" not in result.output


def test_redis_started_late(tmp_path: Path, redis_factory: Any) -> None:
    server = redis_factory(start=False)
    spec = _spec(tmp_path, _targets(f"- redis: {server.url}"))
    # started once the wait has found it down
    result = run_cli_reacting("run", str(spec), on={"connection refused": server.start})
    assert result.code == 0, result.output
    assert "connection refused" in result.stderr


def test_http_503_then_200(tmp_path: Path) -> None:
    with serve(lambda n: (503, b"starting", {}) if n < 4 else (200, b"ok", {})) as server:  # counted, not timed
        spec = _spec(tmp_path, _targets(f"- http: {server.url('/health')}"))
        result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert "HTTP 503" in result.stderr
    assert len(server.requests) > 3  # polled, not one long request


def test_http_json_yellow_then_green(tmp_path: Path) -> None:
    yellow = json.dumps({"status": "yellow", "nodes": {"count": 1}}).encode()
    green = json.dumps({"status": "green", "nodes": {"count": 3}}).encode()
    with sequence((200, yellow, {}), (200, green, {})) as server:  # the first answer is one to refuse
        spec = _spec(tmp_path, _targets(f"- http: {server.url('/_cluster/health')}",
                                        "  status: [200]", "  json: {status: [green], nodes.count: [3]}"))
        result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert 'status is "yellow", waiting for green' in result.stderr


def test_http_status_list_contains_and_headers(tmp_path: Path) -> None:
    """Each target's first answer is one it must refuse (200 is not in [204]; the text lacks "ready")."""
    with sequence((200, b"nope", {}), (204, b"", {})) as server204, \
         sequence((200, b"not yet", {}), (200, b"... ready ...", {})) as server_text:
        spec = _spec(tmp_path, _targets(
            f"- http: {server204.url()}", "  status: [204]",
            f"- http: {server_text.url()}", "  contains: ready", "  headers: {Authorization: Bearer tok-canary-55}"))
        result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert len(server204.requests) >= 2 and len(server_text.requests) >= 2  # the first answers were refused
    assert f"waiting for http {server204.url()}: HTTP 200" in result.stderr
    assert f"waiting for http {server_text.url()}: answer does not contain the expected text" in result.stderr
    assert all(headers["Authorization"] == "Bearer tok-canary-55" for _, headers in server_text.requests)
    assert "tok-canary-55" not in result.output


def test_tcp_port_opened_late(tmp_path: Path) -> None:
    port = free_port()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def open_port() -> None:
        listener.bind(("127.0.0.1", port))
        listener.listen(8)

    spec = _spec(tmp_path, _targets(f"- tcp: 127.0.0.1:{port}"))
    result = run_cli_reacting("run", str(spec), on={f"waiting for tcp 127.0.0.1:{port}": open_port})
    listener.close()
    assert result.code == 0, result.output
    assert f"waiting for tcp 127.0.0.1:{port}: connection refused" in result.stderr


def test_black_holed_address_does_not_stall_the_loop(tmp_path: Path) -> None:
    with black_hole() as (host, port):
        spec = _spec(tmp_path, _targets(f"- tcp: {host}:{port}"), timeout="1500ms", extra="    attempt_timeout: 200ms")
        started = time.monotonic()
        result = run_cli("run", str(spec))
        elapsed = time.monotonic() - started
    assert result.code == 1
    error = _step(tmp_path)["error"]
    match = re.search(r"tcp 127\.0\.0\.1:\d+: timed out \((\d+) attempts over 1\.\d s\)", error)
    assert match, error
    assert int(match.group(1)) >= 4  # 200 ms attempts, not one attempt hanging to the deadline
    assert elapsed < 5


def test_dns_localhost_and_file(tmp_path: Path) -> None:
    marker = tmp_path / "ready-flag"
    spec = _spec(tmp_path, _targets("- dns: localhost", f"- file: {marker}", "  non_empty: true"))
    result = run_cli_reacting("run", str(spec), on={f"waiting for file {marker}": lambda: marker.write_text("go")})
    assert result.code == 0, result.output
    assert "ready: dns localhost" in result.stderr
    assert f"waiting for file {marker}: does not exist" in result.stderr


def test_deadline_message_one_line_per_target_not_ready(tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    spec = _spec(tmp_path, _targets(
        f"- postgres: postgresql://app:hunter2-canary@127.0.0.1:{port_a}/app",
        f"- tcp: 127.0.0.1:{port_b}", "- dns: localhost"), timeout="1s")
    result = run_cli("run", str(spec))
    assert result.code == 1
    lines = _step(tmp_path)["error"].splitlines()
    assert lines[0] == "2 of 3 targets not ready:"
    assert re.fullmatch(rf"postgresql://app:\*\*\*\*@127\.0\.0\.1:{port_a}/app: connection refused "
                        r"\(\d+ attempts? over 1\.0 s\)", lines[1]), lines
    assert re.fullmatch(rf"tcp 127\.0\.0\.1:{port_b}: connection refused \(\d+ attempts? over 1\.0 s\)", lines[2])
    assert "hunter2-canary" not in result.output
    closing = result.stderr.strip().splitlines()[-1]
    assert closing.startswith("prefect-init: waiting: step deps (wait) failed: 2 of 3 targets not ready: "
                              f"postgresql://app:****@127.0.0.1:{port_a}/app: connection refused"), closing
    assert f" | tcp 127.0.0.1:{port_b}: connection refused" in closing


def test_target_timeout_shorter_than_the_step(tmp_path: Path) -> None:
    spec = _spec(tmp_path, _targets(f"- tcp: 127.0.0.1:{free_port()}", "  timeout: 500ms"), timeout="30s")
    started = time.monotonic()
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert time.monotonic() - started < 5
    assert re.search(r"attempts? over 0\.5 s", _step(tmp_path)["error"])


@pytest.mark.parametrize(("target", "message"), [
    ("- tcp: no-port", "steps[0].wait[0].tcp: expected host:port"),
    ("- {}", "steps[0].wait[0]: a wait target has exactly one of: tcp, http, postgres, redis, dns, file, migrations"),
    ("- {tcp: 'a:1', dns: x}", "steps[0].wait[0]: a wait target has exactly one of"),
    ("- http: ftp://x", "steps[0].wait[0].http: expected an http:// or https:// URL"),
    ("- {tcp: 'a:1', interval: 1s}", "steps[0].wait[0].interval: unknown key"),
])
def test_bad_targets_are_spec_errors(tmp_path: Path, target: str, message: str) -> None:
    result = run_cli("check", str(_spec(tmp_path, _targets(target))))
    assert result.code == 2
    assert message in result.stderr, result.stderr


def test_https_target_with_ca_cert_insecure_and_untrusted(tmp_path: Path, tls_ca: Any) -> None:
    _, pem, cert = tls_ca
    with sequence((200, b"ok", {})) as plain, serve(lambda n: (200, b"ok", {}), tls=cert) as server:
        assert server.url().startswith("https://") and plain.url().startswith("http://")
        trusted = run_cli("run", str(_spec(tmp_path, _targets(f"- http: {server.url()}", f"  ca_cert: {pem}"))))
        assert trusted.code == 0, trusted.output
        insecure = run_cli("run", str(_spec(tmp_path, _targets(f"- http: {server.url()}", "  insecure: true"))))
        assert insecure.code == 0, insecure.output
        untrusted = run_cli("run", str(_spec(tmp_path, _targets(f"- http: {server.url()}"), timeout="1s")))
    assert untrusted.code == 1
    error = _step(tmp_path)["error"]
    # the verification failure itself, not any error that mentions a certificate (a missing ca_cert file would)
    assert f"https://127.0.0.1:{server.port}/: [SSL: CERTIFICATE_VERIFY_FAILED]" in error, error
