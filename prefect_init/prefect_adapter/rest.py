"""The few calls of Prefect's REST API that the observer makes, each bounded in time, over httpx.

Prefect's own client retries for minutes and flushes logs and events at exit without a bound: the behaviour that
held pods back when the API went away. These calls are the API's documented endpoints, made once each.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

CALL_TIMEOUT = httpx.Timeout(10.0, connect=1.0)
"""One call's limit. A server that is gone is seen at connect (1 s); a server that took the call but is slow (a
rollout's pods all calling at once) is given 10 s to answer, since a call abandoned and made again doubles its
load. The observer makes its calls from its own thread, so no step waits for one; the calls that do hold a pod
back (creating the flow run, the flush at the end) are bounded by their own budgets, not by this."""


class ApiLost(Exception):
    """The API did not answer in time, refused the connection, or answered 5xx or 429: worth trying again
    later (``retry_after``: the seconds a 429's ``Retry-After`` asked for)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Busy(Exception):
    """A 5xx or 429: worth one more try."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


RETRY_PAUSE = 0.2


class ApiRefused(ApiLost):
    """The API answered 401 or 403: a missing or wrong ``PREFECT_API_KEY``."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}: check PREFECT_API_KEY or PREFECT_API_AUTH_STRING")
        self.status = status


class ApiRejected(ApiLost):
    """The API answered another 4xx: it refuses this call (a body an older server does not take, say), not the
    next one. Never tried again."""

    def __init__(self, status: int, method: str, path: str) -> None:
        super().__init__(f"HTTP {status} on {method} {path}")
        self.status = status


def _retry_after(response: httpx.Response) -> float | None:
    """A 429's ``Retry-After`` in seconds (Prefect Cloud sends one), when it is a number."""
    try:
        return max(0.0, float(response.headers["Retry-After"]))
    except (KeyError, ValueError):
        return None


def _setting(name: str) -> str | None:
    from prefect_init.prefect_adapter.discovery import profile_setting

    return os.environ.get(name) or profile_setting(name)


def auth_headers() -> dict[str, str]:
    """How Prefect's own client authenticates: ``PREFECT_API_KEY`` (Prefect Cloud, a bearer token), else
    ``PREFECT_API_AUTH_STRING`` (a self-hosted server's basic auth, ``user:password``); from the environment or
    the active profile. Both values are registered as secrets."""
    from prefect_init.runtime.redaction import register_secret

    key = _setting("PREFECT_API_KEY")
    if key:
        register_secret(key)
        return {"Authorization": f"Bearer {key}"}
    auth = _setting("PREFECT_API_AUTH_STRING")
    if auth:
        import base64

        register_secret(auth)
        token = base64.b64encode(auth.encode()).decode()
        register_secret(token)
        return {"Authorization": f"Basic {token}"}
    return {}


class PrefectRest:
    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: httpx.Timeout = CALL_TIMEOUT) -> None:
        self.client = httpx.Client(base_url=url.rstrip("/"), headers=headers or {}, timeout=timeout)

    def call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        """One call; a 5xx or 429 (a busy server, a locked database) is tried once more after 0.2 s (unless a
        429 asks for longer), anything else that fails raises at once: :class:`ApiRefused` (401, 403),
        :class:`ApiRejected` (another 4xx), :class:`ApiLost`. Bounded: at most two calls of the client's timeout
        (:data:`CALL_TIMEOUT`), or of ``timeout`` seconds when given."""
        try:
            return self._call(method, path, body, timeout)
        except _Busy as first:
            if first.retry_after is not None and first.retry_after > RETRY_PAUSE:
                raise ApiLost(str(first), first.retry_after) from None  # the caller waits as long as asked
            time.sleep(RETRY_PAUSE)
            try:
                return self._call(method, path, body, timeout)
            except _Busy as exc:
                raise ApiLost(str(exc), exc.retry_after) from None

    def _call(self, method: str, path: str, body: Any = None, timeout: float | None = None) -> Any:
        limit = self.client.timeout if timeout is None else httpx.Timeout(timeout, connect=min(timeout, 1.0))
        try:
            response = self.client.request(method, path, json=body, timeout=limit)
        except httpx.TimeoutException:
            raise ApiLost(f"no answer within {limit.read:g} s") from None
        except httpx.ConnectError as exc:
            text = str(exc).lower()
            raise ApiLost("connection refused" if "refused" in text else "cannot connect") from None
        except httpx.HTTPError as exc:  # a kept-alive connection closed under us: the server went away
            raise ApiLost(f"connection lost: {type(exc).__name__}") from None
        if response.status_code in (401, 403):
            raise ApiRefused(response.status_code)
        if response.status_code >= 500 or response.status_code == 429:
            raise _Busy(f"HTTP {response.status_code} on {method} {path.split('?')[0]}", _retry_after(response))
        if response.status_code >= 400:
            raise ApiRejected(response.status_code, method, path.split("?")[0])
        return response.json() if response.content else None

    def close(self) -> None:
        self.client.close()
