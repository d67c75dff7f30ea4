"""HTTP as a step speaks it: every redirect checked hop by hop, one deadline over a whole exchange.

- An **origin** is a URL's scheme, host and port (the default port filled in): ``http://config:80``. The headers a
  step was given (its credentials) go only to the origin of the URL it was given.
- A redirect from ``https`` to ``http`` is never followed (:func:`downgrade`): the answer, and whatever the next
  request carries, would travel in cleartext.
- :class:`Deadline`: one :func:`time.monotonic` deadline over a whole exchange (connect, headers, every chunk of
  the body, every redirect). httpx's timeouts are per read: a server that sends a byte just before each read
  timeout would hold a download for ever. Each request's timeouts are the time left; the body is read chunk by
  chunk with the deadline checked after each; and at the deadline a timer shuts the exchange's sockets, so a read
  blocked on a stalled server returns then, not a read timeout later.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from types import TracebackType
from typing import Any

import httpx

DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def origin(url: httpx.URL) -> Origin:
    """``(scheme, host, port)`` with the scheme's default port filled in."""
    return url.scheme, url.host, url.port or DEFAULT_PORTS.get(url.scheme, 0)


def origin_text(value: Origin) -> str:
    """``https://vault:8200`` (never a path or a query: those can hold a token)."""
    scheme, host, port = value
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def other_origin(first: Origin, target: Origin) -> str:
    """How ``target`` differs from ``first``, in words: ``another host (cdn)``, ``another port (cfg:8443)``."""
    if target[1] != first[1]:
        return f"another host ({target[1]})"
    if target[2] != first[2]:
        return f"another port ({target[1]}:{target[2]})"
    return f"another scheme ({origin_text(target)})"


def downgrade(current: httpx.URL, target: httpx.URL) -> bool:
    """A redirect from https to http."""
    return current.scheme == "https" and target.scheme != "https"


def redirect_target(response: httpx.Response) -> httpx.URL | None:
    """Where a redirect points (its Location, resolved against the request's URL), or None if it is none."""
    if not response.is_redirect or response.next_request is None:
        return None
    return response.next_request.url


class DeadlinePassed(Exception):
    """The exchange did not finish by its deadline."""


class Sockets:
    """The sockets an httpx client opened, learnt through httpcore's ``trace`` extension (pass
    ``extensions={"trace": sockets.trace}`` with each request), so that a deadline can shut them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._open = [s for s in self._open if s.fileno() != -1] + [sock]

    def shutdown(self) -> None:
        """Shut every socket for reading and writing: a blocked ``recv`` in another thread returns at once
        (closing alone does not wake it). The base class's ``shutdown``, also for a TLS socket, whose own would
        unwrap it under the reading thread's feet."""
        with self._lock:
            opened = list(self._open)
        for sock in opened:
            with suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


class Deadline:
    """One deadline over a whole exchange; a context manager that arms the timer shutting ``sockets`` then.

    .. code-block:: python

        with Deadline(time.monotonic() + 30, sockets) as deadline:
            with client.stream("GET", url, timeout=deadline.timeout(), extensions=deadline.extensions()) as r:
                for chunk in deadline.chunks(r):
                    ...
    """

    def __init__(self, at: float, sockets: Sockets | None = None) -> None:
        self.at = at
        self.sockets = sockets or Sockets()
        self.fired = threading.Event()
        self._timer: threading.Timer | None = None

    def __enter__(self) -> Deadline:
        self._timer = threading.Timer(max(0.0, self.remaining()), self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        self.fired.set()
        self.sockets.shutdown()

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.fired.is_set() or self.remaining() <= 0

    def check(self) -> None:
        if self.passed():
            raise DeadlinePassed

    def timeout(self) -> httpx.Timeout:
        """Every httpx timeout (connect, each read, each write, the pool) at most the time left."""
        return httpx.Timeout(max(0.001, self.remaining()))

    def extensions(self) -> dict[str, Any]:
        return {"trace": self.sockets.trace}

    def chunks(self, response: httpx.Response, check: Callable[[], None] | None = None) -> Iterator[bytes]:
        """The body as it arrives, the deadline checked after every chunk (and ``check``, the step's own
        cancellation); :class:`DeadlinePassed` when it passes, also if the timer's shutdown made the body look
        complete (a body that ends when the connection closes) or broken."""
        try:
            for chunk in response.iter_bytes():
                self.check()
                if check is not None:
                    check()
                yield chunk
        except httpx.TransportError:
            if self.passed():
                raise DeadlinePassed from None
            raise
        self.check()
