"""Credentials go only where they were meant: a redirect never carries the headers a step was given (nor Vault's
token) to another origin (scheme, host, port), and an https URL is never followed to http.

Every test runs real HTTP servers on 127.0.0.1: two ports are two origins. Each server records the headers it
received; a canary must never reach the other origin, and the first origin must have received it (the positive
control: the canary was sent at all).
"""

from __future__ import annotations

import base64
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli
from tests.httpservers import ScriptedServer, sequence, serve

GOOD_YAML = b"database:\n  host: db\n  port: 5432\n"
PREVIOUS = b"database:\n  host: old-db\n  port: 5432\n"
KEY_CANARY = "api-key-canary-3141"
TOKEN_CANARY = "private-token-canary-2718"
BEARER_CANARY = "Bearer bearer-canary-1618"
CANARIES = (KEY_CANARY, TOKEN_CANARY, "bearer-canary-1618")
HEADERS = {"X-Api-Key": KEY_CANARY, "PRIVATE-TOKEN": TOKEN_CANARY, "Authorization": BEARER_CANARY}


def moved(location: str, status: int = 302) -> Any:
    """A server that answers every request with a redirect to ``location``."""
    return sequence((status, b"", {"Location": location}))


def _received(server: ScriptedServer) -> str:
    """Every header (name and value) of every request the server received, as one text to scan."""
    return json.dumps([headers for _, headers in server.requests])


def _assert_sent_all(server: ScriptedServer) -> None:
    """The positive control: this origin received every canary."""
    assert server.requests, "the first origin received no request"
    for canary in CANARIES:
        assert canary in _received(server), (canary, server.requests)


def _assert_none(server: ScriptedServer) -> None:
    text = _received(server)
    for canary in CANARIES:
        assert canary not in text, (canary, server.requests)


def _config_spec(tmp_path: Path, config: dict[str, Any], retries: int = 3) -> Path:
    path = tmp_path / "init.yaml"
    step = {"name": "config", "timeout": "20s", "retries": retries, "retry_delay": "50ms", "config": config}
    path.write_text(json.dumps({"version": 1, "name": "cfg", "status_file": "status.json", "steps": [step]}))
    return path


def _step(tmp_path: Path) -> dict[str, Any]:
    step: dict[str, Any] = json.loads((tmp_path / "status.json").read_text())["steps"][0]
    return step


def _previous(tmp_path: Path) -> Path:
    dest = tmp_path / "conf" / "app.yaml"
    dest.parent.mkdir(exist_ok=True)
    dest.write_bytes(PREVIOUS)
    return dest


def _assert_untouched(dest: Path) -> None:
    assert dest.read_bytes() == PREVIOUS
    assert not [p for p in dest.parent.iterdir() if p.name != dest.name]  # no temporary file left


# --- config ------------------------------------------------------------------------------------------------------


def test_config_redirect_to_another_port_is_final_by_default(tmp_path: Path) -> None:
    """Same host name, another port: another origin. Refused (final), and nothing reached the other port."""
    with sequence((200, GOOD_YAML, {})) as other, moved(other.url("/real.yaml")) as first:
        dest = _previous(tmp_path)
        result = run_cli("run", str(_config_spec(tmp_path, {"url": first.url("/c.yaml"), "dest": str(dest),
                                                             "headers": HEADERS})))
    assert result.code == 1, result.output
    error = _step(tmp_path)["error"]
    assert f"redirected to another port (127.0.0.1:{other.port})" in error, error
    assert "set follow_redirects: true" in error
    assert _step(tmp_path)["attempts"] == 1  # final, not retried
    _assert_sent_all(first)
    assert not other.requests
    _assert_untouched(dest)


def test_config_redirect_to_another_port_followed_without_the_headers(tmp_path: Path) -> None:
    with sequence((200, GOOD_YAML, {})) as other, moved(other.url("/real.yaml")) as first:
        dest = _previous(tmp_path)
        result = run_cli("run", str(_config_spec(tmp_path, {"url": first.url("/c.yaml"), "dest": str(dest),
                                                             "headers": HEADERS, "follow_redirects": True})))
    assert result.code == 0, result.output
    assert dest.read_bytes() == GOOD_YAML
    _assert_sent_all(first)
    assert [p for p, _ in other.requests] == ["/real.yaml"]  # the other origin was asked...
    _assert_none(other)  # ...without a single one of the step's headers
    assert f"redirected to another origin (http://127.0.0.1:{other.port}); following it without the step's " \
           "headers" in result.stderr, result.stderr


def test_config_url_credentials_stay_with_their_origin_and_the_log_names_only_the_origin(tmp_path: Path) -> None:
    """A URL's own user:password (Basic auth) goes to its origin only; the other origin's URL, whose query may hold a
    token the redirect named, is logged as its origin alone."""
    with sequence((200, GOOD_YAML, {})) as other, \
            moved(other.url("/real.yaml?v=query-canary-4669")) as first:
        url = first.url("/c.yaml").replace("http://", "http://cfg-user:url-password-canary-1414@")
        result = run_cli("run", str(_config_spec(tmp_path, {"url": url, "dest": "app.yaml",
                                                             "follow_redirects": True})))
    assert result.code == 0, result.output
    basic = "Basic " + base64.b64encode(b"cfg-user:url-password-canary-1414").decode()
    assert first.requests[0][1].get("Authorization") == basic  # the positive control
    assert other.requests and "Authorization" not in other.requests[0][1], other.requests
    line = f"redirected to another origin (http://127.0.0.1:{other.port}); following it without"
    assert line in result.stderr, result.stderr
    assert "query-canary-4669" not in result.output and "url-password-canary-1414" not in result.output


def test_config_never_brings_the_headers_back_after_leaving(tmp_path: Path) -> None:
    """A -> B -> A again: once a redirect left the origin, the URL the other origin chose gets no headers."""
    hops: list[ScriptedServer] = []

    def first_script(n: int) -> Any:
        return (302, b"", {"Location": hops[0].url("/b.yaml")}) if n == 0 else (200, GOOD_YAML, {})

    with serve(first_script) as origin, moved(origin.url("/back.yaml")) as hop:
        hops.append(hop)
        result = run_cli("run", str(_config_spec(tmp_path, {"url": origin.url("/c.yaml"), "dest": "app.yaml",
                                                             "headers": HEADERS, "follow_redirects": True})))
    assert result.code == 0, result.output
    assert [p for p, _ in origin.requests] == ["/c.yaml", "/back.yaml"]
    first_headers = json.dumps(origin.requests[0][1])
    assert all(c in first_headers for c in CANARIES), origin.requests[0]
    _assert_none(hop)
    back_headers = json.dumps(origin.requests[1][1])
    assert not any(c in back_headers for c in CANARIES), origin.requests[1]


def test_config_redirect_to_a_file_url_is_final(tmp_path: Path) -> None:
    marker = tmp_path / "marker.yaml"
    marker.write_text("stolen: true\n")
    with moved(f"file://{marker}") as first:
        result = run_cli("run", str(_config_spec(tmp_path, {"url": first.url("/c.yaml"), "dest": "app.yaml",
                                                             "headers": HEADERS, "follow_redirects": True})))
    assert result.code == 1, result.output
    assert "redirected to a file URL: refused, only http and https are followed" in _step(tmp_path)["error"]
    assert _step(tmp_path)["attempts"] == 1
    assert not (tmp_path / "app.yaml").exists()


def test_config_same_origin_redirect_keeps_the_headers(tmp_path: Path) -> None:
    def script(n: int) -> Any:
        return (301, b"", {"Location": "/moved.yaml"}) if n == 0 else (200, GOOD_YAML, {})

    with serve(script) as server:
        result = run_cli("run", str(_config_spec(tmp_path, {"url": server.url("/c.yaml"), "dest": "app.yaml",
                                                            "headers": HEADERS})))
    assert result.code == 0, result.output
    assert [p for p, _ in server.requests] == ["/c.yaml", "/moved.yaml"]
    for _, headers in server.requests:
        assert headers.get("X-Api-Key") == KEY_CANARY and headers.get("Authorization") == BEARER_CANARY, headers


@pytest.mark.parametrize("follow", [False, True])
def test_config_https_to_http_is_final_whatever_follow_redirects_says(tmp_path: Path, tls_ca: Any,
                                                                       follow: bool) -> None:
    _, pem, cert = tls_ca
    with sequence((200, GOOD_YAML, {})) as plain, \
            serve(lambda n: (302, b"", {"Location": plain.url("/c.yaml")}), tls=cert) as secure:
        assert secure.url().startswith("https://") and plain.url().startswith("http://")
        dest = _previous(tmp_path)
        result = run_cli("run", str(_config_spec(tmp_path, {"url": secure.url("/c.yaml"), "dest": str(dest),
                                                             "headers": HEADERS, "ca_cert": str(pem),
                                                             "follow_redirects": follow})))
    assert result.code == 1, result.output
    error = _step(tmp_path)["error"]
    assert f"redirected from https to http (http://127.0.0.1:{plain.port}): refused" in error, error
    assert _step(tmp_path)["attempts"] == 1
    _assert_sent_all(secure)
    assert not plain.requests
    _assert_untouched(dest)


def test_config_same_host_same_port_other_scheme_is_another_origin(tmp_path: Path, tls_ca: Any) -> None:
    """http -> https on another port of the same host (an upgrade): followed only when allowed, and without the
    headers, as the URL given was the http one."""
    _, pem, cert = tls_ca
    with serve(lambda n: (200, GOOD_YAML, {}), tls=cert) as secure, moved(secure.url("/c.yaml")) as plain:
        refused = run_cli("run", str(_config_spec(tmp_path, {"url": plain.url("/c.yaml"), "dest": "a.yaml",
                                                              "headers": HEADERS, "ca_cert": str(pem)})))
        assert refused.code == 1
        assert not secure.requests
        allowed = run_cli("run", str(_config_spec(tmp_path, {"url": plain.url("/c.yaml"), "dest": "a.yaml",
                                                              "headers": HEADERS, "ca_cert": str(pem),
                                                              "follow_redirects": True})))
    assert allowed.code == 0, allowed.output
    _assert_sent_all(plain)
    assert secure.requests
    _assert_none(secure)


# --- the http wait target ---------------------------------------------------------------------------------------


def _wait_spec(tmp_path: Path, *lines: str, timeout: str = "20s") -> Path:
    head = ["version: 1", "name: waiting", "status_file: status.json", "steps:", "  - name: deps",
            f"    timeout: {timeout}", "    retries: 0", "    wait:"]
    path = tmp_path / "init.yaml"
    path.write_text("\n".join(head + [f"      {line}" for line in lines]) + "\n")
    return path


WAIT_HEADERS = (f"  headers: {{X-Api-Key: {KEY_CANARY}, PRIVATE-TOKEN: {TOKEN_CANARY}, "
                f"Authorization: '{BEARER_CANARY}'}}")


def test_wait_http_strips_every_header_on_a_redirect_to_another_origin(tmp_path: Path) -> None:
    with sequence((200, b"ready", {})) as other, moved(other.url("/health"), 307) as first:
        result = run_cli("run", str(_wait_spec(tmp_path, f"- http: {first.url('/health')}", WAIT_HEADERS)))
    assert result.code == 0, result.output
    _assert_sent_all(first)
    assert other.requests  # the readiness answer came from the other origin...
    _assert_none(other)  # ...which never saw a header the target was given


def test_wait_http_401_after_a_redirect_to_another_origin_says_why(tmp_path: Path) -> None:
    with sequence((401, b"who are you", {})) as other, moved(other.url("/health"), 307) as first:
        result = run_cli("run", str(_wait_spec(tmp_path, f"- http: {first.url('/health')}", WAIT_HEADERS,
                                               timeout="1s")))
    assert result.code == 1, result.output
    _assert_sent_all(first)
    assert other.requests
    _assert_none(other)
    error = _step(tmp_path)["error"]
    assert f"HTTP 401 from http://127.0.0.1:{other.port}, where a redirect led: the target's headers are not " \
           "sent to another origin" in error, error


def test_wait_http_redirect_to_a_file_url_is_not_followed(tmp_path: Path) -> None:
    with moved(f"file://{tmp_path}/init.yaml") as first:
        result = run_cli("run", str(_wait_spec(tmp_path, f"- http: {first.url('/health')}", timeout="1s")))
    assert result.code == 1, result.output
    assert first.requests
    assert "redirected to a file URL: not followed" in _step(tmp_path)["error"], _step(tmp_path)["error"]


def test_wait_http_same_origin_redirect_keeps_the_headers(tmp_path: Path) -> None:
    def script(n: int) -> Any:
        return (302, b"", {"Location": "/ready"}) if n % 2 == 0 else (200, b"ok", {})

    with serve(script) as server:
        result = run_cli("run", str(_wait_spec(tmp_path, f"- http: {server.url('/health')}", WAIT_HEADERS)))
    assert result.code == 0, result.output
    assert [p for p, _ in server.requests] == ["/health", "/ready"]
    _assert_sent_all(server)
    assert KEY_CANARY in json.dumps(server.requests[1][1])


def test_wait_http_https_to_http_is_not_followed(tmp_path: Path, tls_ca: Any) -> None:
    _, pem, cert = tls_ca
    with sequence((200, b"ready", {})) as plain, \
            serve(lambda n: (302, b"", {"Location": plain.url("/health")}), tls=cert) as secure:
        result = run_cli("run", str(_wait_spec(tmp_path, f"- http: {secure.url('/health')}", WAIT_HEADERS,
                                               f"  ca_cert: {pem}", timeout="2s")))
    assert result.code == 1, result.output
    _assert_sent_all(secure)
    assert not plain.requests
    assert f"redirected from https to http (http://127.0.0.1:{plain.port}): not followed" in _step(tmp_path)["error"]


# --- vault --------------------------------------------------------------------------------------------------------

VAULT_TOKEN_CANARY = "hvs.vault-token-canary-5772"


def _vault_spec(tmp_path: Path, address: str) -> Path:
    token = tmp_path / "vault-token"
    token.write_text(VAULT_TOKEN_CANARY)
    step = {"name": "secrets", "timeout": "20s", "retries": 3, "retry_delay": "50ms",
            "vault": {"address": address, "auth": {"token_file": str(token)}, "namespace": "team-a",
                      "secrets": [{"path": "secret/data/app", "dest": "app.json"}]}}
    path = tmp_path / "init.yaml"
    path.write_text(json.dumps({"version": 1, "name": "v", "status_file": "status.json", "steps": [step]}))
    return path


VAULT_ANSWER: tuple[int, bytes, dict[str, str | None]] = (
    200, json.dumps({"data": {"data": {"api_key": "v-1"}, "metadata": {"version": 1}}}).encode(),
                {"Content-Type": "application/json"})


def test_vault_token_never_follows_a_redirect_to_another_origin(tmp_path: Path) -> None:
    with sequence(VAULT_ANSWER) as other, moved(other.url("/v1/secret/data/app"), 307) as first:
        result = run_cli("run", str(_vault_spec(tmp_path, first.url().rstrip("/"))))
    assert result.code == 1, result.output
    assert VAULT_TOKEN_CANARY in json.dumps(first.requests[0][1])  # the positive control: the token was sent
    assert not other.requests
    error = _step(tmp_path)["error"]
    assert f"redirected to another origin (http://127.0.0.1:{other.port})" in error, error
    assert _step(tmp_path)["attempts"] == 1  # final
    assert not (tmp_path / "app.json").exists()
    assert VAULT_TOKEN_CANARY not in result.output


def test_vault_same_origin_redirect_is_followed_with_the_token(tmp_path: Path) -> None:
    def script(n: int) -> Any:
        return (307, b"", {"Location": "/v1/secret/data/app?moved=1"}) if n == 0 else VAULT_ANSWER

    with serve(script) as server:
        result = run_cli("run", str(_vault_spec(tmp_path, server.url().rstrip("/"))))
    assert result.code == 0, result.output
    assert [p for p, _ in server.requests] == ["/v1/secret/data/app", "/v1/secret/data/app?moved=1"]
    assert all(VAULT_TOKEN_CANARY in json.dumps(h) for _, h in server.requests)
    assert json.loads((tmp_path / "app.json").read_text()) == {"api_key": "v-1"}


def test_vault_https_to_http_is_refused(tmp_path: Path, tls_ca: Any) -> None:
    _, pem, cert = tls_ca
    with sequence(VAULT_ANSWER) as plain, \
            serve(lambda n: (307, b"", {"Location": plain.url("/v1/secret/data/app")}), tls=cert) as secure:
        spec = _vault_spec(tmp_path, secure.url().rstrip("/"))
        data = json.loads(spec.read_text())
        data["steps"][0]["vault"]["ca_cert"] = str(pem)
        spec.write_text(json.dumps(data))
        result = run_cli("run", str(spec))
    assert result.code == 1, result.output
    assert VAULT_TOKEN_CANARY in json.dumps(secure.requests[0][1])
    assert not plain.requests
    assert f"redirected from https to http (http://127.0.0.1:{plain.port}): refused" in _step(tmp_path)["error"]


class _Recorder:
    """An HTTP server on 127.0.0.1 that records every request (method, path, headers, body) and answers
    ``answer(method, path)``: (status, body, headers)."""

    def __init__(self, answer: Any) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.requests.append((self.command, self.path, dict(self.headers), body))
                status, reply, headers = answer(self.command, self.path)
                self.send_response(status)
                for key, value in {"Content-Length": str(len(reply)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = do_PUT = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_vault_login_secret_never_follows_a_redirect_to_another_origin(tmp_path: Path) -> None:
    """A 307 keeps the method and the body: an approle login redirected elsewhere would carry its secret_id."""
    secret_id = "secret-id-canary-1123"
    other = _Recorder(lambda method, path: (200, b'{"auth": {"client_token": "hvs.x"}}', {}))
    first = _Recorder(lambda method, path: (307, b"", {"Location": other.url + path}))
    try:
        step = {"name": "secrets", "timeout": "20s", "retries": 3, "retry_delay": "50ms",
                "vault": {"address": first.url, "auth": {"approle": {"role_id": "role-1", "secret_id": secret_id}},
                          "secrets": [{"path": "secret/data/app", "dest": "app.json"}]}}
        spec = tmp_path / "init.yaml"
        spec.write_text(json.dumps({"version": 1, "name": "v", "status_file": "status.json", "steps": [step]}))
        result = run_cli("run", str(spec))
    finally:
        first.close()
        other.close()
    assert result.code == 1, result.output
    assert first.requests and first.requests[0][0] == "POST"
    assert secret_id.encode() in first.requests[0][3]  # the positive control: the login carried the secret_id
    assert not other.requests
    error = _step(tmp_path)["error"]
    assert "vault login (approle at auth/approle): redirected to another origin" in error, error
    assert _step(tmp_path)["attempts"] == 1
