"""``http: URL``: ready when the answer has an accepted status (default 2xx) and, if asked, JSON values or text.

.. code-block:: yaml

    - http: http://elasticsearch:9200/_cluster/health
      status: [200]
      json: {status: [green, yellow]}   # dotted key -> accepted values
      contains: '"number_of_nodes"'
      headers: {Authorization: "Bearer ${ES_TOKEN}"}   # header values are secrets, masked everywhere
      ca_cert: /etc/ssl/es-ca.pem        # or insecure: true

Redirects are followed; the ``headers`` only to the URL's own origin (scheme, host, port), never to another one,
and https never to http. Each probe (``attempt_timeout``) is one deadline over the whole answer: one that trickles
is not ready. See docs/hardening/http.md.
"""

from __future__ import annotations

import json as jsonlib
import time
from typing import Annotated, Any

import httpx
from pydantic import AfterValidator, Field

from prefect_init.kinds.wait.loop import NotReady
from prefect_init.kinds.wait.targets import Checker, TargetBase
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.documents import lookup
from prefect_init.runtime.httpguard import (
    Deadline,
    DeadlinePassed,
    Sockets,
    downgrade,
    origin,
    origin_text,
    redirect_target,
)
from prefect_init.runtime.redaction import register_secret
from prefect_init.spec.durations import format_duration

MAX_BODY = 1024 * 1024
"""What a probe reads of an answer, at most: the rest is not waited for."""
MAX_REDIRECTS = 10


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
    """Keeps one client (and its connection pool) for all the attempts on a target.

    Redirects are followed here, hop by hop (at most ``MAX_REDIRECTS``): the target's ``headers`` go to the
    origin (scheme, host, port) of its URL only, never to another one a redirect names, and never again once a
    redirect has left it; a redirect from https to http is not followed (not ready, in words). Each probe has one
    deadline, its timeout, over the whole exchange: an answer that trickles is not ready when it passes."""

    def __init__(self, target: Target, ctx: RunContext) -> None:
        self.target = target
        verify: Any = str(ctx.resolve(target.ca_cert)) if target.ca_cert else not target.insecure
        self.client = httpx.Client(verify=verify, follow_redirects=False)
        self.sockets = Sockets()  # the pool's connections, shut by a probe's deadline

    def _get(self, deadline: Deadline) -> tuple[httpx.Response, bytes]:
        """The final answer and (at most ``MAX_BODY`` bytes of) its body."""
        url = httpx.URL(self.target.http)
        first = origin(url)
        left = False
        for _ in range(MAX_REDIRECTS + 1):
            headers = self.target.headers if not left and origin(url) == first else {}
            with self.client.stream("GET", url, headers=headers, timeout=deadline.timeout(),
                                    extensions=deadline.extensions()) as response:
                hop = redirect_target(response)
                if hop is None:
                    body = bytearray()
                    for chunk in deadline.chunks(response):
                        body += chunk
                        if len(body) > MAX_BODY:
                            break
                    return response, bytes(body)
            if hop.scheme not in ("http", "https"):
                raise NotReady(f"redirected to a {hop.scheme or 'scheme-less'} URL: not followed")
            if downgrade(url, hop):
                raise NotReady(f"redirected from https to http ({origin_text(origin(hop))}): not followed")
            left = left or origin(hop) != first
            url = hop
        raise NotReady(f"more than {MAX_REDIRECTS} redirects")

    def check(self, timeout: float) -> None:
        t = self.target
        deadline = Deadline(time.monotonic() + timeout, self.sockets)
        try:
            with deadline:
                response, body = self._get(deadline)
        except httpx.ConnectTimeout:
            raise NotReady("timed out connecting") from None
        except (DeadlinePassed, httpx.TimeoutException):
            raise NotReady(f"the answer did not finish within {format_duration(round(timeout, 1))}") from None
        except httpx.HTTPError as exc:
            if deadline.passed():
                raise NotReady(f"the answer did not finish within {format_duration(round(timeout, 1))}") from None
            raise NotReady(_reason(exc)) from None
        accepted = t.status if t.status is not None else range(200, 300)
        if response.status_code not in accepted:
            elsewhere = origin(response.request.url)
            if self.target.headers and elsewhere != origin(httpx.URL(t.http)) and response.status_code in (401, 403):
                raise NotReady(f"HTTP {response.status_code} from {origin_text(elsewhere)}, where a redirect led: "
                               "the target's headers are not sent to another origin (point http: at it)")
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
