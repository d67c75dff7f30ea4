"""Prefect tasks for the ``vault`` step kind: login, read a secret, write a secret file.

What passes between these tasks are in-memory handles (:class:`VaultSession`, :class:`SecretData`) whose
``repr`` masks the token and the values. Results are not persisted and Prefect 3 keeps task parameters in the
process, so no value reaches Prefect's API; every value is registered with the redactor on arrival.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from prefect_init.kinds import vault
from prefect_init.tasks._common import TASK_OPTIONS, task_context


class SecretData:
    """The key/values of one Vault secret. ``repr`` shows the keys only."""

    def __init__(self, path: str, values: dict[str, Any]) -> None:
        self.path, self.values = path, values

    def __repr__(self) -> str:
        return f"SecretData({self.path!r}, keys={sorted(self.values)})"


@task(name="vault-login", **TASK_OPTIONS)
def vault_login(address: str | None = None, auth: dict[str, Any] | None = None, namespace: str | None = None,
                ca_cert: str | None = None, timeout: float = 60.0) -> vault.VaultSession:
    """Log in to Vault once (``auth`` as in the spec: ``{"kubernetes": {"role": "myapp"}}``,
    ``{"approle": {...}}``, ``{"token_file": ...}``; none: ``VAULT_TOKEN``).

    Example:
        ```python
        from prefect import flow
        from prefect_init.tasks.vault import read_vault_secret, vault_login, write_secret_file

        @flow
        def secrets():
            session = vault_login("https://vault:8200", {"kubernetes": {"role": "myapp"}})
            secret = read_vault_secret(session, "secret/data/myapp", required=["api_key"])
            write_secret_file(secret, "/secrets/app.env", format="env")
        ```
    """
    spec = vault.VaultSpec.model_validate({"address": address, "auth": auth, "namespace": namespace,
                                           "ca_cert": ca_cert, "secrets": [{"path": "-", "dest": "-"}]})
    return vault.VaultSession(spec, task_context("vault-login", timeout))


@task(name="vault-read", **TASK_OPTIONS)
def read_vault_secret(session: vault.VaultSession, path: str, version: int | None = None,
                      keys: list[str | dict[str, str]] | None = None, required: list[str] | None = None) -> SecretData:
    """Read one secret (KV v1, KV v2 with optional ``version``, dynamic) through a :func:`vault_login` session.

    Example:
        ```python
        secret = read_vault_secret(session, "database/creds/myapp")
        ```
    """
    spec = vault.SecretSpec(path=path, version=version, keys=keys, required=required or [], dest="-")
    return SecretData(path, vault.select(session.read(path, version), spec))


@task(name="vault-write", **TASK_OPTIONS)
def write_secret_file(secret: SecretData, dest: str, format: str = "json", mode: str = "0400") -> str:
    """Write a secret atomically as json, env (shell-quoted) or yaml, with ``mode`` (default 0400).

    Example:
        ```python
        write_secret_file(secret, "/secrets/db.env", format="env")
        ```
    """
    from prefect_init.runtime.atomic import write_atomic
    from prefect_init.spec.model import parse_mode

    write_atomic(dest, vault.render(secret.values, format, secret.path), mode=parse_mode(mode))
    return f"{secret.path} -> {dest}"
