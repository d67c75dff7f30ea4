"""Real HTTP servers on 127.0.0.1 for the tests, whose answer changes at a chosen moment."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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


class SlowApi:
    """An API on 127.0.0.1 that takes every call and answers it well, but only after ``delay`` seconds (a server
    busy with a rollout's pods); records each call as it arrives: ``(method, path)``."""

    def __init__(self, delay: float) -> None:
        self.calls: list[tuple[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                api.calls.append((self.command, self.path))
                time.sleep(delay)
                body = b'{"id": "00000000-0000-4000-8000-0000000000aa"}'
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            do_GET = do_POST = do_PATCH = _answer

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


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
