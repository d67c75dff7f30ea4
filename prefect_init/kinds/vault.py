"""The ``vault`` step: secrets from HashiCorp Vault into files the main container reads, and nowhere else.

.. code-block:: yaml

    - name: secrets
      vault:
        address: ${VAULT_ADDR}             # default: $VAULT_ADDR
        namespace: team-a                  # X-Vault-Namespace (Vault Enterprise / HCP)
        ca_cert: /etc/vault/ca.pem         # or insecure: true
        auth: {kubernetes: {role: myapp}}  # or {approle: {role_id: ..., secret_id_file: ...}} or {token_file: ...};
                                           # none: $VAULT_TOKEN
        secrets:
          - path: secret/data/myapp        # the API path, as `vault read` spells it (KV v2 has /data/)
            version: 3                     # KV v2 only
            keys: [api_key, {db_password: DB_PASSWORD}]   # a subset, optionally renamed
            required: [api_key]
            dest: /secrets/app.json
            format: json                   # json | env | yaml
            mode: "0400"
          - path: database/creds/myapp     # dynamic credentials
            dest: /secrets/db.env
            format: env

One login per run, shared by every secret; secrets are fetched at the same time; nothing is written until every
secret was fetched and checked, then each file is written atomically. Every value and the token are registered
with the redactor as soon as they arrive. The token is revoked at the end when the step logged in itself
(``revoke_token``). Retried: connection errors, timeouts, 5xx, 429, sealed and standby. Final: 400, 401, 403,
404, a deleted or destroyed KV v2 version, a missing required key, a redirect to another origin (scheme, host,
port) or from https to http: the token goes only to ``address``'s origin (see docs/hardening/http.md).
"""

from __future__ import annotations

import json
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any, Literal

from pydantic import Field, model_validator

from prefect_init.errors import RetryableError, StepError, StepFailed
from prefect_init.runtime.atomic import AtomicFile, make_parent
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.httpguard import downgrade, origin, origin_text
from prefect_init.runtime.redaction import redact, register_secret, register_values
from prefect_init.runtime.values import resolve_value
from prefect_init.spec.durations import Duration
from prefect_init.spec.model import FromFile, Mode, Owner, StepBase, StrictModel

SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
MAX_PARALLEL = 32
"""Secrets fetched at the same time, at most."""
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class KubernetesAuth(StrictModel):
    role: str
    mount: str = "kubernetes"
    jwt_file: str = SERVICE_ACCOUNT_TOKEN


class AppRoleAuth(StrictModel):
    role_id: str | FromFile
    secret_id: str | FromFile | None = None
    secret_id_file: str | None = None
    mount: str = "approle"

    @model_validator(mode="after")
    def _one_secret_id(self) -> AppRoleAuth:
        if (self.secret_id is None) == (self.secret_id_file is None):
            raise ValueError("give exactly one of secret_id or secret_id_file")
        return self


class VaultAuth(StrictModel):
    kubernetes: KubernetesAuth | None = None
    approle: AppRoleAuth | None = None
    token_file: str | None = None

    @model_validator(mode="after")
    def _one_method(self) -> VaultAuth:
        if sum(x is not None for x in (self.kubernetes, self.approle, self.token_file)) != 1:
            raise ValueError("give exactly one of kubernetes, approle or token_file")
        return self


class SecretSpec(StrictModel):
    path: str = Field(pattern=r"^[^/\s][^\s]*$")
    version: int | None = Field(default=None, ge=1)
    keys: list[str | dict[str, str]] | None = None
    required: list[str] = Field(default_factory=list)
    dest: str
    format: Literal["json", "env", "yaml"] = "json"
    mode: Mode = 0o400
    owner: Owner | None = None

    def renames(self) -> dict[str, str] | None:
        """Vault key -> output key, or None for every key as it is."""
        if self.keys is None:
            return None
        out: dict[str, str] = {}
        for item in self.keys:
            out.update({item: item} if isinstance(item, str) else item)
        return out


class VaultSpec(StrictModel):
    address: str | None = Field(default=None, pattern=r"^https?://")
    namespace: str | None = None
    ca_cert: str | None = None
    insecure: bool = False
    auth: VaultAuth | None = None
    secrets: list[SecretSpec] = Field(min_length=1)
    revoke_token: bool | None = None
    request_timeout: Duration = 10.0


class Step(StepBase):
    kind = "vault"
    vault: VaultSpec

    def describe(self) -> str:
        return f"vault: {len(self.vault.secrets)} secrets"


class RedirectRefused(Exception):
    """A redirect the token must not follow (another origin, or https to http); the message says which."""


def _session(address: str) -> Any:
    """A requests session for hvac that follows a redirect only within the origin (scheme, host, port) of
    ``address``, and never from https to http: the token (``X-Vault-Token``), the namespace, a login's secret_id
    or JWT would go with it, and requests strips only ``Authorization``. Vault's standby nodes answer 307 to the
    active node's address: point ``address`` at the active node (or a service in front of it) instead."""
    import httpx
    import requests

    class Session(requests.Session):
        def rebuild_auth(self, prepared_request: Any, response: Any) -> None:
            first = origin(httpx.URL(address))  # here, not before: a bad address fails in hvac's words first
            target, current = httpx.URL(prepared_request.url), httpx.URL(response.request.url)
            if downgrade(current, target):
                raise RedirectRefused(f"redirected from https to http ({origin_text(origin(target))}): refused, "
                                      "the token would travel in cleartext")
            if origin(target) != first:
                raise RedirectRefused(f"redirected to another origin ({origin_text(origin(target))}): refused, the "
                                      "token goes only to address: (point it at the node that answers, e.g. the "
                                      "active one)")
            super().rebuild_auth(prepared_request, response)

    return Session()


def vault_error(exc: Exception, what: str) -> StepError:
    """An hvac / requests failure as our error: final or worth retrying; Vault's message, never a value."""
    import hvac.exceptions as hx
    import requests

    if isinstance(exc, RedirectRefused):
        return StepFailed(f"{what}: {exc}")
    if isinstance(exc, requests.exceptions.SSLError):
        return StepFailed(f"{what}: TLS failed, the server's certificate is not trusted (set ca_cert: to its CA)")
    if isinstance(exc, requests.exceptions.Timeout):
        return RetryableError(f"{what}: timed out")
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        reason = "connection refused" if "refused" in text.lower() else "cannot connect"
        return RetryableError(f"{what}: {reason}")
    if isinstance(exc, hx.VaultError):
        said = "; ".join(str(e) for e in (exc.errors or []) if e) or "no message"
        if isinstance(exc, hx.InvalidPath):
            metadata = ((exc.json or {}).get("data") or {}).get("metadata") if isinstance(exc.json, dict) else None
            if isinstance(metadata, dict) and metadata.get("destroyed"):
                return StepFailed(f"{what}: version {metadata.get('version')} was destroyed")
            if isinstance(metadata, dict) and metadata.get("deletion_time"):
                return StepFailed(f"{what}: version {metadata.get('version')} was deleted at "
                                  f"{metadata['deletion_time']}")
            return StepFailed(f"{what}: not found (404: check the path; KV v2 paths have /data/)")
        if isinstance(exc, hx.Forbidden):
            return StepFailed(f"{what}: permission denied (403: check the Vault policy of this role / token)")
        if isinstance(exc, hx.Unauthorized | hx.InvalidRequest):
            return StepFailed(f"{what}: {said}")
        if isinstance(exc, hx.VaultDown):
            return RetryableError(f"{what}: Vault is sealed or down (503: {said})")
        if isinstance(exc, hx.RateLimitExceeded):
            return RetryableError(f"{what}: rate limited or standby (429: {said})")
        if isinstance(exc, hx.InternalServerError | hx.BadGateway | hx.VaultNotInitialized | hx.UnexpectedError):
            return RetryableError(f"{what}: Vault answered an error ({said})")
        return StepFailed(f"{what}: {said}")
    return StepFailed(f"{what}: unexpected {type(exc).__name__}")


class VaultSession:
    """One login, shared by every read of a step. Its repr never shows the token."""

    def __init__(self, spec: VaultSpec, ctx: RunContext) -> None:
        address = spec.address or os.environ.get("VAULT_ADDR")
        if not address:
            raise StepFailed("vault: no address (set address: in the spec or VAULT_ADDR)")
        self.address = address
        self.leases: dict[str, int] = {}
        self.spec = spec
        self.ctx = ctx
        self.verify: Any = str(ctx.resolve(spec.ca_cert)) if spec.ca_cert else not spec.insecure
        self.logged_in = False
        self._local = threading.local()  # one client (and its kept-alive connection) per thread
        self.token = self._token()
        register_secret(self.token)

    def __repr__(self) -> str:
        return f"VaultSession({self.address!r}, token=****)"

    def client(self, token: str | None = None) -> Any:
        import hvac

        timeout = max(0.5, min(self.spec.request_timeout, self.ctx.remaining()))
        session = _session(self.address)
        session.verify = self.verify
        return hvac.Client(url=self.address, token=token, namespace=self.spec.namespace, verify=self.verify,
                           timeout=timeout, session=session)

    def _token(self) -> str:
        auth = self.spec.auth
        if auth is None:
            token = os.environ.get("VAULT_TOKEN")
            if not token:
                raise StepFailed("vault: no auth in the spec and VAULT_TOKEN is not set")
            return token
        if auth.token_file is not None:
            return resolve_value(FromFile(file=auth.token_file), self.ctx, "vault token_file")
        client = self.client()
        try:
            if auth.kubernetes is not None:
                k = auth.kubernetes
                jwt = resolve_value(FromFile(file=k.jwt_file), self.ctx, "vault kubernetes jwt_file")
                what = f"vault login (kubernetes role {k.role} at auth/{k.mount})"
                response = client.auth.kubernetes.login(role=k.role, jwt=jwt, mount_point=k.mount, use_token=False)
            else:
                assert auth.approle is not None
                a = auth.approle
                role_id = resolve_value(a.role_id, self.ctx, "vault approle role_id")
                register_secret(role_id)
                secret_value = a.secret_id if a.secret_id is not None else FromFile(file=a.secret_id_file or "")
                secret_id = resolve_value(secret_value, self.ctx, "vault approle secret_id")
                register_secret(secret_id)
                what = f"vault login (approle at auth/{a.mount})"
                response = client.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=a.mount,
                                                     use_token=False)
        except StepError:
            raise
        except Exception as exc:
            raise vault_error(exc, redact(f"{what}")) from None
        auth_block = response.get("auth") if isinstance(response, dict) else None
        token = auth_block.get("client_token") if isinstance(auth_block, dict) else None
        if not isinstance(token, str) or not token:  # an HTML page (a proxy's login), {"auth": null}, a 204
            raise StepFailed(f"{what}: the answer holds no client token, so it is not Vault's (check that address: "
                             "is Vault itself, not a proxy, a login page or another service)")
        register_secret(token)
        self.logged_in = True
        self.ctx.log.info(f"{what}: logged in")
        return token

    def read(self, path: str, version: int | None = None) -> dict[str, Any]:
        """The key/value data at ``path`` (KV v1, KV v2, dynamic secrets), registered as secrets on arrival."""
        params = {"version": version} if version is not None else None
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.client(self.token)
        try:
            response = client.adapter.get(f"/v1/{path}", params=params)
        except Exception as exc:
            raise vault_error(exc, f"vault read {path}") from None
        data = response.get("data") if isinstance(response, dict) else None
        if isinstance(data, dict) and set(data) == {"data", "metadata"} and isinstance(data["metadata"], dict):
            data = data["data"]  # KV v2 wraps the values with their metadata
        if not isinstance(data, dict):
            raise StepFailed(f"vault read {path}: the answer has no key/value data")
        register_values(data)
        lease = response.get("lease_duration") if isinstance(response, dict) else None
        if isinstance(lease, int) and lease > 0 and response.get("lease_id"):
            self.leases[path] = lease  # a dynamic secret: how long its credentials live
        return data

    def revoke(self) -> None:
        try:
            self.client(self.token).auth.token.revoke_self()
            self.ctx.log.info("vault token revoked")
        except Exception as exc:
            self.ctx.log.warning(f"vault: could not revoke the token: {vault_error(exc, 'revoke-self')}")


def env_quote(value: str) -> str:
    """POSIX shell single quotes: every character literal, a ``'`` written as ``'\\''``."""
    return "'" + value.replace("'", "'\\''") + "'"


def render(values: dict[str, Any], fmt: str, path: str) -> bytes:
    if fmt == "json":
        return (json.dumps(values, indent=2, sort_keys=True) + "\n").encode()
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(values, sort_keys=True, allow_unicode=True).encode()
    bad = [k for k in values if not _ENV_KEY.match(k)]
    if bad:
        raise StepFailed(f"vault read {path}: keys not usable as environment variables: {', '.join(bad)} "
                         "(rename them with keys:)")
    lines = []
    for key, value in sorted(values.items()):
        text = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"{key}={env_quote(text)}\n")
    return "".join(lines).encode()


def select(values: dict[str, Any], secret: SecretSpec) -> dict[str, Any]:
    renames = secret.renames()
    if renames is not None:
        absent = [k for k in renames if k not in values]
        if absent:
            raise StepFailed(f"vault read {secret.path}: missing keys: {', '.join(absent)}")
        values = {renames[k]: values[k] for k in renames}
    missing = [k for k in secret.required if k not in values or values[k] in (None, "")]
    if missing:
        raise StepFailed(f"vault read {secret.path}: missing required keys: {', '.join(missing)}")
    return values


def run(step: Step, ctx: RunContext) -> str:
    from prefect_init.kinds.files import resolve_owner

    spec = step.vault
    session = VaultSession(spec, ctx)
    revoke = spec.revoke_token if spec.revoke_token is not None else session.logged_in
    try:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(spec.secrets)), thread_name_prefix="vault") as pool:
            futures = [pool.submit(session.read, s.path, s.version) for s in spec.secrets]
            fetched = [f.result() for f in futures]
        rendered = [(s, render(select(values, s), s.format, s.path)) for s, values in zip(spec.secrets, fetched,
                                                                                          strict=True)]
        with ExitStack() as stack:  # every file prepared before any is published; a failure removes them all
            files = []
            for secret, payload in rendered:
                dest = ctx.resolve(secret.dest)
                make_parent(dest)
                owner = resolve_owner(secret.owner) if secret.owner else None
                out = stack.enter_context(AtomicFile(dest, secret.mode, owner))
                out.handle.write(payload)
                files.append(out)
            for out in files:
                out.commit()
    finally:
        if revoke:
            session.revoke()
    for secret in spec.secrets:
        ctx.log.info(f"{secret.path} -> {secret.dest} ({secret.format}, mode {secret.mode:04o})")
    ctx.output("paths", len(spec.secrets))
    for path, seconds in session.leases.items():
        ctx.output("lease_duration_" + re.sub(r"[^A-Za-z0-9_]", "_", path), seconds)
    return f"{len(spec.secrets)} secrets written"



def probe(step: Step, ctx: RunContext) -> Any:
    """Log in as the step would, ask Vault for the token's capabilities on every path (``sys/capabilities-self``)
    and report each path without ``read``; no secret is read, and a token made here is revoked."""
    from prefect_init.runtime.probe import OK, PROBLEM, Finding

    spec = step.vault
    session = VaultSession(spec, ctx)
    revoke = spec.revoke_token if spec.revoke_token is not None else session.logged_in
    try:
        paths = [s.path for s in spec.secrets]
        try:
            answer = session.client(session.token).adapter.post("/v1/sys/capabilities-self", json={"paths": paths})
        except Exception as exc:
            raise vault_error(exc, "vault sys/capabilities-self") from None
        found = answer.get("data", answer) if isinstance(answer, dict) else {}
        denied = [p for p in paths if not {"read", "root", "sudo"} & set(found.get(p) or [])]
    finally:
        if revoke:
            session.revoke()
    if denied:
        return Finding(PROBLEM, [f"{p}: this role/token may not read it (check the Vault policy)" for p in denied])
    return Finding(OK, [f"logged in; read allowed on {len(paths)} paths"])
