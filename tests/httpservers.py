"""Real HTTP servers on 127.0.0.1 for the tests, whose answer changes at a chosen moment."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Answer = tuple[int, bytes, dict[str, str | None]]


class ScriptedServer:
    """Answers what ``script(n)`` says for the n-th request (0-based); records every request."""

    def __init__(self, script: Callable[[int], Answer], delay: float = 0.0) -> None:
        self.script, self.delay = script, delay
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.times: list[float] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.times.append(time.monotonic())
                server.requests.append((self.path, dict(self.headers)))
                status, body, headers = server.script(len(server.requests) - 1)
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    if value is not None:  # None: leave the header out (HTTP/1.0: the body ends at close)
                        self.send_header(key, value)
                self.end_headers()
                if server.delay:
                    self.wfile.flush()
                    time.sleep(server.delay)
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        scheme = "https" if hasattr(self.httpd.socket, "context") else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"


@contextmanager
def serve(script: Callable[[int], Answer], delay: float = 0.0, tls: Any = None) -> Iterator[ScriptedServer]:
    """A server answering ``script(n)`` to the n-th request, optionally ``delay`` s slow to send the body;
    with ``tls`` (a trustme certificate), over HTTPS."""
    server = ScriptedServer(script, delay)
    if tls is not None:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.configure_cert(context)
        server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def scripted(before: Answer, after: Answer, ready_in: float = 0.0) -> Any:
    """Answers ``before`` until ``ready_in`` seconds from now, then ``after``."""
    ready_at = time.monotonic() + ready_in
    return serve(lambda n: after if time.monotonic() >= ready_at else before)


def sequence(*answers: Answer, delay: float = 0.0) -> Any:
    """The n-th request gets the n-th answer; the last one repeats."""
    return serve(lambda n: answers[min(n, len(answers) - 1)], delay)


@contextmanager
def black_hole() -> Iterator[tuple[str, int]]:
    """A TCP address on 127.0.0.1 where connect() hangs: a listener whose accept queue is full drops SYNs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    fillers = []
    for _ in range(4):  # fill the backlog (0 admits one or two connections)
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(address)
        fillers.append(s)
    time.sleep(0.05)
    try:
        yield address[0], address[1]
    finally:
        for s in fillers:
            s.close()
        listener.close()


class SilentServer:
    """An HTTP address on 127.0.0.1 that accepts connections and reads requests but never answers (a paused
    server: the request reaches it, no answer comes), counting the requests that reached it."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/api"
        self.requests: list[bytes] = []
        self.connections: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        """With no answer, a client sends one request per connection (httpx does not pipeline): its first line
        is recorded, the rest read and dropped."""
        first = True
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            if first:
                first = False
                with self._lock:
                    self.requests.append(data.split(b"\r\n", 1)[0])

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def close(self) -> None:
        self.listener.close()
        for conn in self.connections:
            conn.close()


@contextmanager
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


def _api_server(answer: Callable[[BaseHTTPRequestHandler], None]) -> tuple[ThreadingHTTPServer, str]:
    """An HTTP/1.1 server on 127.0.0.1, started, whose every method is ``answer(handler)``; and its API URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            answer(self)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}/api"


def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str = "application/json") -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    with suppress(BrokenPipeError, ConnectionResetError):
        handler.wfile.write(body)


class SlowApi:
    """An API on 127.0.0.1 that takes every call and answers it well, but only after ``delay`` seconds (a server
    busy with a rollout's pods); records each call as it arrives: ``(method, path)``."""

    def __init__(self, delay: float) -> None:
        self.calls: list[tuple[str, str]] = []

        def answer(handler: BaseHTTPRequestHandler) -> None:
            handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
            self.calls.append((handler.command, handler.path))
            time.sleep(delay)
            _reply(handler, 201, b'{"id": "00000000-0000-4000-8000-0000000000aa"}')

        self.httpd, self.url = _api_server(answer)


@contextmanager
def slow_api(delay: float) -> Iterator[SlowApi]:
    api = SlowApi(delay)
    try:
        yield api
    finally:
        api.httpd.shutdown()
        api.httpd.server_close()


def at(delay: float, action: Callable[[], object]) -> threading.Timer:
    """Run ``action`` after ``delay`` seconds, in the background."""
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()
    return timer


CLOUD_MAX_BODY = 5 * 1024 * 1024
"""Prefect Cloud's limit on a request body (5 MiB): above it, 413; a POST, PUT or PATCH without Content-Length,
411 (its rate-limit page)."""


@dataclass
class Forwarded:
    method: str
    path: str
    status: int
    body_bytes: int
    items: int
    """The entries of a list body (log lines, events): what a Cloud tier counts one by one."""


class CloudProxy:
    """A proxy on 127.0.0.1 in front of a real Prefect server that keeps Prefect Cloud's manners (411 without
    Content-Length, 413 above 5 MiB), answers ``refuse(method, path)`` (a status) instead of forwarding when that
    says so, waits ``pause(method, path)`` seconds before forwarding, and records every call: what a pod sends,
    counted as Cloud counts it."""

    def __init__(self, upstream: str, refuse: Callable[[str, str], int | None] = lambda method, path: None,
                 pause: Callable[[str, str], float] = lambda method, path: 0.0) -> None:
        self.calls: list[Forwarded] = []
        self.upstream = httpx.Client(base_url=upstream.rstrip("/").removesuffix("/api"), timeout=30)

        def answer(handler: BaseHTTPRequestHandler) -> None:
            method, path = handler.command, handler.path.split("?")[0]
            length = handler.headers.get("Content-Length")
            body = handler.rfile.read(int(length)) if length else b""
            status, reply, kind = 0, b"", "application/json"
            if length is None and method in ("POST", "PUT", "PATCH"):
                status = 411
            elif len(body) > CLOUD_MAX_BODY:
                status = 413
            else:
                status = refuse(method, path) or 0
                if status:
                    reply = b'{"detail": "refused by the test proxy"}'
            if not status:
                time.sleep(pause(method, path))  # a busy server: batches grow
                headers = {k: v for k, v in handler.headers.items() if k.lower() in ("content-type", "authorization")}
                forwarded = self.upstream.request(method, handler.path, content=body, headers=headers)
                status, reply = forwarded.status_code, forwarded.content
                kind = forwarded.headers.get("content-type", kind)
            items = 0
            if body.startswith(b"["):
                with suppress(ValueError):
                    items = len(json.loads(body))
            self.calls.append(Forwarded(method, path, status, len(body), items))
            _reply(handler, status, reply, kind)

        self.httpd, self.url = _api_server(answer)

    def counts(self) -> dict[str, int]:
        """What Cloud's two buckets would count of the calls made so far: API requests (every call but the
        writes of logs and events) and logs + events (each line and event singly)."""
        bulk = [c for c in self.calls if c.method == "POST" and c.path.endswith(("/logs/", "/events"))]
        return {"requests": len(self.calls) - len(bulk), "log lines": sum(c.items for c in bulk
                                                                          if c.path.endswith("/logs/")),
                "events": sum(c.items for c in bulk if c.path.endswith("/events")), "calls": len(self.calls)}


@contextmanager
def cloud_proxy(upstream: str, refuse: Callable[[str, str], int | None] = lambda method, path: None,
                pause: Callable[[str, str], float] = lambda method, path: 0.0) -> Iterator[CloudProxy]:
    proxy = CloudProxy(upstream, refuse, pause)
    try:
        yield proxy
    finally:
        proxy.httpd.shutdown()
        proxy.httpd.server_close()
        proxy.upstream.close()
