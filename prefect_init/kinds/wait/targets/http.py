"""``http: URL``: ready when the answer has an accepted status (default 2xx) and, if asked, JSON values or text.

.. code-block:: yaml

    - http: http://elasticsearch:9200/_cluster/health
      status: [200]
      json: {status: [green, yellow]}   # dotted key -> accepted values
      contains: '"number_of_nodes"'
      headers: {Authorization: "Bearer ${ES_TOKEN}"}   # header values are secrets, masked everywhere
      ca_cert: /etc/ssl/es-ca.pem        # or insecure: true
"""

from __future__ import annotations

import json as jsonlib
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator, Field

from prefect_init.kinds.wait.loop import NotReady
from prefect_init.kinds.wait.targets import Checker, TargetBase
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.documents import lookup
from prefect_init.runtime.redaction import register_secret

MAX_BODY = 1024 * 1024


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value


class Target(TargetBase):
    key = "http"
    http: Annotated[str, AfterValidator(_http_url)]
    status: list[int] | None = None
    json_: dict[str, list[Any]] | None = Field(default=None, alias="json")
    contains: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    ca_cert: str | None = None
    insecure: bool = False

    def checker(self, ctx: RunContext) -> Checker:
        for value in self.headers.values():
            register_secret(value)
        return HttpChecker(self, ctx)


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "cannot resolve host"
    return text.splitlines()[0][:200]


class HttpChecker:
    """Keeps one client (and its connection pool) for all the attempts on a target."""

    def __init__(self, target: Target, ctx: RunContext) -> None:
        self.target = target
        verify: Any = str(ctx.resolve(target.ca_cert)) if target.ca_cert else not target.insecure
        self.client = httpx.Client(verify=verify, headers=target.headers, follow_redirects=True)

    def check(self, timeout: float) -> None:
        t = self.target
        try:
            with self.client.stream("GET", t.http, timeout=timeout) as response:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BODY:
                        break
        except httpx.HTTPError as exc:
            raise NotReady(_reason(exc)) from None
        accepted = t.status if t.status is not None else range(200, 300)
        if response.status_code not in accepted:
            raise NotReady(f"HTTP {response.status_code}")
        if t.contains is not None and t.contains.encode() not in body:
            raise NotReady("answer does not contain the expected text")
        if t.json_:
            try:
                data = jsonlib.loads(body)
            except ValueError:
                raise NotReady(f"HTTP {response.status_code} but the answer is not JSON") from None
            for key, allowed in t.json_.items():
                found, value = lookup(data, key)
                if not found:
                    raise NotReady(f"JSON has no {key}")
                if value not in allowed:
                    wanted = " or ".join(map(str, allowed))
                    raise NotReady(f"{key} is {jsonlib.dumps(value)[:80]}, waiting for {wanted}")

    def close(self) -> None:
        self.client.close()
