"""A small HTTP server that stands in for HashiCorp Vault in the tests.

No Vault binary can be installed on this machine, so this follows Vault's documented HTTP API closely enough
for hvac and prefect-init to talk to it as they would to Vault:

- ``GET /v1/sys/health``: 200 active, 429 standby, 503 sealed, 501 not initialized, with the query flags
  ``standbyok``, ``activecode``, ``standbycode``, ``sealedcode``, ``uninitcode``.
- Tokens: ``auth/token/lookup-self`` (GET), ``renew-self`` (POST), ``revoke-self`` (POST, 204).
- ``sys/capabilities-self`` (POST ``{"paths": [...]}``): ``read`` on a path the token's policy covers, else ``deny``.
- Logins: ``auth/<mount>/login`` for the kubernetes method (``role`` + ``jwt``) and approle (``role_id`` +
  ``secret_id``), answering the ``auth`` block with a new client token.
- KV v2 ``<mount>/data/<path>`` with ``?version=``; a deleted or destroyed version answers 404 with its
  ``metadata`` in ``data``, as Vault does. KV v1 ``<mount>/<path>``. Dynamic ``database/creds/<role>`` with a lease.
- Policies: each token may read a set of path prefixes; anything else answers 403
  ``{"errors": ["permission denied"]}``. A missing or unknown token answers 403 too.
- ``X-Vault-Namespace`` scopes every path. Sealed: every other request answers 503 ``Vault is sealed``.
- Every answer carries the full envelope (request_id, lease_id, renewable, lease_duration, data, wrap_info,
  warnings, auth, mount_type).

Requests are recorded (method, path, namespace) so tests can count them.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class KV2Version:
    data: dict[str, Any]
    created: str
    deleted: str = ""
    destroyed: bool = False


@dataclass
class VaultState:
    sealed: bool = False
    standby: bool = False
    initialized: bool = True
    # token -> readable path prefixes (namespace-qualified: "ns/" + path, "" for the root namespace)
    tokens: dict[str, list[str]] = field(default_factory=dict)
    # (mount, role) -> (jwt, prefixes)
    kubernetes_roles: dict[tuple[str, str], tuple[str, list[str]]] = field(default_factory=dict)
    # (mount, role_id) -> (secret_id, prefixes)
    approles: dict[tuple[str, str], tuple[str, list[str]]] = field(default_factory=dict)
    kv2: dict[str, list[KV2Version]] = field(default_factory=dict)  # "ns/mount/path" -> versions (1-based)
    kv2_mounts: set[str] = field(default_factory=lambda: {"secret"})
    kv1: dict[str, dict[str, Any]] = field(default_factory=dict)  # "ns/mount/path" -> data
    db_roles: set[str] = field(default_factory=set)  # "ns/role"
    revoked: list[str] = field(default_factory=list)
    latency: float = 0.0  # seconds added to every answer (benchmarks: a Vault across the network)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, namespace)
    sealed_answers: int = 0  # answer this many requests (health aside) as sealed, then be unsealed
    sealed_served: int = 0
    standby_answers: int = 0  # answer this many requests (health aside) as a standby node, then be active
    standby_served: int = 0
    in_flight: int = 0  # requests being answered now, and the most at once
    max_in_flight: int = 0

    def put_kv2(self, path: str, data: dict[str, Any], namespace: str = "") -> int:
        versions = self.kv2.setdefault(f"{namespace}{path}", [])
        versions.append(KV2Version(dict(data), _now()))
        return len(versions)

    def count(self, path: str, method: str = "GET") -> int:
        return sum(1 for m, p, _ in self.requests if p == path and m == method)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _envelope(data: Any = None, *, auth: Any = None, lease_id: str = "", lease_duration: int = 0,
              renewable: bool = False, mount_type: str = "") -> dict[str, Any]:
    return {"request_id": str(uuid.uuid4()), "lease_id": lease_id, "renewable": renewable,
            "lease_duration": lease_duration, "data": data, "wrap_info": None, "warnings": None, "auth": auth,
            "mount_type": mount_type}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: Any = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _errors(self, status: int, *messages: str) -> None:
        self._send(status, {"errors": list(messages)})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("POST")

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(raw) if raw else {}
        except ValueError:
            parsed = {}
        return parsed if isinstance(parsed, dict) else {}

    def _route(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path.removeprefix("/v1/").strip("/")
        namespace = (self.headers.get("X-Vault-Namespace") or "").strip("/")
        ns = f"{namespace}/" if namespace else ""
        with self.server.lock:
            state.requests.append((method, path, namespace))
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            self._answer(method, path, query, namespace, ns)
        finally:
            with self.server.lock:
                state.in_flight -= 1

    def _answer(self, method: str, path: str, query: dict[str, str], namespace: str, ns: str) -> None:
        state = self.server.state
        if state.latency:
            time.sleep(state.latency)
        body = self._body() if method == "POST" else {}
        if path == "sys/health":
            return self._health(query)
        if state.sealed or state.sealed_served < state.sealed_answers:
            with self.server.lock:
                state.sealed_served += 1
            return self._errors(503, "Vault is sealed")
        if state.standby or state.standby_served < state.standby_answers:
            with self.server.lock:
                state.standby_served += 1
            return self._errors(500, "local node not active but active cluster node not found")
        if path.startswith("auth/") and path.endswith("/login"):
            return self._login(path.split("/")[1], body, ns)
        token = self.headers.get("X-Vault-Token", "")
        if token not in state.tokens:
            return self._errors(403, "permission denied")
        if path == "auth/token/lookup-self":
            return self._send(200, _envelope({"id": token, "policies": ["default"], "ttl": 3600, "renewable": True}))
        if path == "auth/token/renew-self" and method == "POST":
            return self._send(200, _envelope(auth={"client_token": token, "lease_duration": 3600, "renewable": True,
                                                   "policies": ["default"]}))
        if path == "auth/token/revoke-self" and method == "POST":
            with self.server.lock:
                state.tokens.pop(token, None)
                state.revoked.append(token)
            return self._send(204)
        if path == "sys/capabilities-self" and method == "POST":  # what this token may do on each path
            paths = body.get("paths") or ([body["path"]] if body.get("path") else [])
            caps = {p: ["read"] if any((ns + p).startswith(prefix) for prefix in state.tokens[token]) else ["deny"]
                    for p in paths}
            data: dict[str, Any] = dict(caps)
            if len(paths) == 1:
                data["capabilities"] = caps[paths[0]]
            return self._send(200, {**data, "data": data})
        if not any((ns + path).startswith(prefix) for prefix in state.tokens[token]):
            return self._errors(403, "permission denied")
        return self._read(path, ns, query)

    def _health(self, query: dict[str, str]) -> None:
        state = self.server.state
        if not state.initialized:
            status = int(query.get("uninitcode", 501))
        elif state.sealed:
            status = int(query.get("sealedcode", 503))
        elif state.standby:
            status = 200 if query.get("standbyok") in ("true", "1") else int(query.get("standbycode", 429))
        else:
            status = int(query.get("activecode", 200))
        self._send(status, {"initialized": state.initialized, "sealed": state.sealed, "standby": state.standby,
                            "performance_standby": False, "replication_performance_mode": "disabled",
                            "replication_dr_mode": "disabled", "server_time_utc": 0, "version": "1.17.0",
                            "cluster_name": "vault-cluster-test", "cluster_id": "test"})

    def _login(self, mount: str, body: dict[str, Any], ns: str) -> None:
        """The auth method is the mount's, as in Vault: kubernetes (role + jwt) or approle (role_id + secret_id)."""
        state = self.server.state
        if any(m == mount for m, _ in state.kubernetes_roles):
            jwt, prefixes = state.kubernetes_roles.get((mount, str(body.get("role"))), ("", []))
            if not jwt or not secrets.compare_digest(jwt, str(body.get("jwt", ""))):
                return self._errors(403, "permission denied")
        elif any(m == mount for m, _ in state.approles):
            secret_id, prefixes = state.approles.get((mount, str(body.get("role_id"))), ("", []))
            if not secret_id or not secrets.compare_digest(secret_id, str(body.get("secret_id", ""))):
                return self._errors(400, "invalid role or secret ID")
        else:
            return self._errors(400, f"no handler for route \"auth/{mount}/login\". route entry not found.")
        token = "hvs." + secrets.token_urlsafe(24)
        with self.server.lock:
            state.tokens[token] = prefixes
        self._send(200, _envelope(auth={"client_token": token, "accessor": secrets.token_hex(8),
                                        "policies": ["default"], "token_policies": ["default"], "metadata": {},
                                        "lease_duration": 3600, "renewable": True, "entity_id": "",
                                        "token_type": "service", "orphan": True}))

    def _read(self, path: str, ns: str, query: dict[str, str]) -> None:
        state = self.server.state
        mount, _, rest = path.partition("/")
        if mount in state.kv2_mounts and rest.startswith("data/"):
            versions = state.kv2.get(f"{ns}{mount}/{rest.removeprefix('data/')}")
            if not versions:
                return self._errors(404)
            number = int(query.get("version") or 0) or len(versions)
            if number > len(versions):
                return self._errors(404)
            version = versions[number - 1]
            metadata = {"created_time": version.created, "custom_metadata": None, "deletion_time": version.deleted,
                        "destroyed": version.destroyed, "version": number}
            if version.deleted or version.destroyed:  # Vault answers 404 with the metadata, and no data
                return self._send(404, _envelope({"data": None, "metadata": metadata}, mount_type="kv"))
            return self._send(200, _envelope({"data": version.data, "metadata": metadata}, mount_type="kv"))
        if mount == "database" and rest.startswith("creds/"):
            if f"{ns}{rest.removeprefix('creds/')}" not in state.db_roles:
                return self._errors(400, f"unknown role: {rest.removeprefix('creds/')}")
            lease = f"database/creds/{rest.removeprefix('creds/')}/{secrets.token_hex(8)}"
            return self._send(200, _envelope({"username": "v-k8s-" + secrets.token_hex(4),
                                              "password": secrets.token_urlsafe(16)}, lease_id=lease,
                                             lease_duration=3600, renewable=True, mount_type="database"))
        data = state.kv1.get(f"{ns}{path}")
        if data is None:
            return self._errors(404)
        return self._send(200, _envelope(data, lease_duration=2764800, mount_type="kv"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: VaultState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.lock = threading.Lock()


@dataclass
class FakeVault:
    state: VaultState
    address: str


@contextmanager
def vault_server(state: VaultState | None = None, tls: Any = None) -> Iterator[FakeVault]:
    """Serve ``state``; with ``tls`` (a trustme certificate), over HTTPS."""
    state = state or VaultState()
    server = _Server(state)
    if tls is not None:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FakeVault(state, f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
