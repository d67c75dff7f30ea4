"""The few calls of Prefect's REST API that the observer makes, each bounded in time, over httpx.

Prefect's own client retries for minutes and flushes logs and events at exit without a bound: the behaviour that
held pods back when the API went away. These calls are the API's documented endpoints, made once each.
No answer holds the caller past its deadline or past :data:`MAX_ANSWER` bytes, and an answer that is not the
API's (an SSO proxy's login page, ``{}``) is :class:`ApiWrong`, in words, never an exception of a parser.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import zlib
from typing import Any

import httpx

CALL_TIMEOUT = httpx.Timeout(10.0, connect=1.0)
"""One call's limit. A server that is gone is seen at connect (1 s); a server that took the call but is slow (a
rollout's pods all calling at once) is given 10 s to answer, since a call abandoned and made again doubles its
load. The 10 s bound the whole call, from the first byte sent to the last one read (:class:`PrefectRest`). The
observer makes its calls from its own thread, so no step waits for one; the calls that do hold a pod back
(creating the flow run, the flush at the end) are bounded by their own budgets, not by this."""


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


class ApiWrong(ApiLost):
    """The API answered, but not as Prefect's API does: an HTML page (an SSO or proxy login), a redirect, a body
    that is not JSON or not of the shape asked for, an answer larger than :data:`MAX_ANSWER`. Asked again, it would
    answer the same: never tried again, and the observer records nothing more."""


MAX_ANSWER = 1024 * 1024
"""The most bytes of one answer read (decoded). The largest answer the observer reads is a flow run (a few KiB: its
parameters are three paths); the artifact's answer echoes its markdown, which is not read past this."""


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
    """A setting's text; a key read from a file keeps its newline, which no HTTP header may hold: stripped."""
    from prefect_init.prefect_adapter.discovery import profile_setting

    value = os.environ.get(name) or profile_setting(name)
    return value.strip() if value else value


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
    """The observer's calls, each bounded as a whole: at most :data:`MAX_ANSWER` bytes read and at most its
    timeout in seconds from the first byte sent to the last one read, headers included (httpx bounds each read,
    not the call: an answer trickled a byte at a time would hold the caller for ever). Each call runs in a
    thread of its own that the caller abandons at the deadline (closing its connections)."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: httpx.Timeout = CALL_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.headers = {"Accept-Encoding": "identity", **(headers or {})}
        self.timeout = timeout
        self._lock = threading.Lock()
        self.client = self._client()

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=self.timeout)

    def call(self, method: str, path: str, body: Any = None, timeout: float | None = None,
             answer: bool = True) -> Any:
        """One call; a 5xx or 429 (a busy server, a locked database) is tried once more after 0.2 s (unless a
        429 asks for longer), anything else that fails raises at once: :class:`ApiRefused` (401, 403),
        :class:`ApiRejected` (another 4xx), :class:`ApiWrong` (an answer that is not the API's), :class:`ApiLost`.
        Bounded: at most two calls of the client's read timeout (:data:`CALL_TIMEOUT`), or of ``timeout`` seconds
        when given, each as a whole. ``answer=False``: the caller needs no body (only that the call was taken);
        it is read (to keep the connection) up to the cap, not parsed."""
        try:
            return self._call(method, path, body, timeout, answer)
        except _Busy as first:
            if first.retry_after is not None and first.retry_after > RETRY_PAUSE:
                raise ApiLost(str(first), first.retry_after) from None  # the caller waits as long as asked
            time.sleep(RETRY_PAUSE)
            try:
                return self._call(method, path, body, timeout, answer)
            except _Busy as exc:
                raise ApiLost(str(exc), exc.retry_after) from None

    def _call(self, method: str, path: str, body: Any, timeout: float | None, answer: bool) -> Any:
        seconds = (self.timeout.read or 10.0) if timeout is None else timeout
        deadline = time.monotonic() + seconds
        client = self.client
        exchange = _Exchange(client, method, path, body, deadline, seconds, answer)
        worker = threading.Thread(target=exchange.run, name="prefect-call", daemon=True)
        worker.start()
        if not exchange.done.wait(seconds):
            self._abandon(client)
            what = "no whole answer" if exchange.headers_read else "no answer"
            raise ApiLost(f"{what} within {seconds:.3g} s")
        if exchange.error is not None:
            raise exchange.error
        return exchange.result

    def _abandon(self, client: httpx.Client) -> None:
        """A call past its deadline: later calls go through a new client, and the old one is closed (its
        connection with it: the abandoned thread's next read fails) without waiting for it."""
        with self._lock:
            if self.client is client:
                self.client = self._client()
        threading.Thread(target=_close_quietly, args=(client,), name="prefect-call-close", daemon=True).start()

    def close(self) -> None:
        with self._lock:
            client = self.client
        _close_quietly(client)


def _close_quietly(client: httpx.Client) -> None:
    with contextlib.suppress(Exception):  # a client closed under a call in flight: that call fails, not this
        client.close()


_ENCODINGS = {"gzip": 47, "x-gzip": 47, "deflate": 47}
"""zlib's wbits for the encodings an answer may come in although ``identity`` was asked for: 32 + 15, a gzip or a
zlib header, found by zlib."""


class _Exchange:
    """One request and its answer, in the worker thread: the result or the error for the caller, who may have
    stopped waiting."""

    def __init__(self, client: httpx.Client, method: str, path: str, body: Any, deadline: float, seconds: float,
                 answer: bool) -> None:
        self.client, self.method, self.path, self.body = client, method, path, body
        self.where = f"{method} {path.split('?')[0]}"
        self.deadline, self.seconds, self.answer = deadline, seconds, answer
        self.done = threading.Event()
        self.headers_read = False
        self.result: Any = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.result = self._exchange()
        except (ApiLost, _Busy) as exc:
            self.error = exc
        except httpx.TimeoutException:
            what = "no whole answer" if self.headers_read else "no answer"
            self.error = ApiLost(f"{what} within {self.seconds:.3g} s")
        except httpx.ConnectError as exc:
            text = str(exc).lower()
            self.error = ApiLost("connection refused" if "refused" in text else "cannot connect")
        except Exception as exc:  # a connection closed under us, or the client closed by _abandon
            self.error = ApiLost(f"connection lost: {type(exc).__name__}")
        finally:
            self.done.set()

    def _exchange(self) -> Any:
        left = max(0.05, self.deadline - time.monotonic())
        limit = httpx.Timeout(left, connect=min(left, 1.0))
        with self.client.stream(self.method, self.path, json=self.body, timeout=limit) as response:
            self.headers_read = True
            status = response.status_code
            if status in (401, 403):
                raise ApiRefused(status)
            if status >= 500 or status == 429:
                raise _Busy(f"HTTP {status} on {self.where}", _retry_after(response))
            if status >= 400:
                raise ApiRejected(status, self.method, self.path.split("?")[0])
            if 300 <= status < 400:
                raise ApiWrong(f"answered {self.where} with a redirect (HTTP {status}), not the API (an SSO or "
                               "proxy login?)")
            kind = response.headers.get("Content-Type", "").lower()
            if "html" in kind:
                raise ApiWrong(f"answered {self.where} with an HTML page, not the API (an SSO or proxy login?)")
            content = self._read(response)
        if content is None or not self.answer:
            return None
        if content.lstrip()[:1] == b"<":
            raise ApiWrong(f"answered {self.where} with an HTML page, not the API (an SSO or proxy login?)")
        if not content.strip():
            return None
        try:
            return json.loads(content)
        except ValueError:
            raise ApiWrong(f"answered {self.where} with a body that is not JSON, not the API") from None

    def _read(self, response: httpx.Response) -> bytes | None:
        """The body, at most :data:`MAX_ANSWER` bytes (decoded), by :attr:`deadline`. Over the cap: an error when
        the caller reads the answer, else None (the call was taken; the rest is left unread)."""
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower() or "identity"
        if encoding not in ("identity", *_ENCODINGS):
            raise ApiWrong(f"answered {self.where} in an encoding it was not asked for ({encoding[:20]!r}), not "
                           "the API")
        decoder = zlib.decompressobj(_ENCODINGS[encoding]) if encoding in _ENCODINGS else None
        parts: list[bytes] = []
        size = 0
        for raw in response.iter_raw():  # each read as it comes (a chunk size would wait for it to fill)
            pending = raw
            while pending:
                if decoder is None:
                    chunk, pending = pending, b""
                else:  # never more than the cap out of one chunk: a small zip bomb is not a large answer
                    try:
                        chunk = decoder.decompress(pending, MAX_ANSWER + 1 - size)
                    except zlib.error:
                        raise ApiWrong(f"answered {self.where} with a body it cannot decompress, not the "
                                       "API") from None
                    pending = decoder.unconsumed_tail
                size += len(chunk)
                if size > MAX_ANSWER:
                    if self.answer:
                        raise ApiWrong(f"answered {self.where} with more than {MAX_ANSWER // 1024 ** 2} MiB, "
                                       "larger than any answer of the API")
                    return None
                parts.append(chunk)
                if not chunk:
                    break
            if time.monotonic() > self.deadline:
                raise ApiLost(f"no whole answer within {self.seconds:.3g} s")
        return b"".join(parts)
