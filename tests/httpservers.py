"""Real HTTP servers on 127.0.0.1 for the tests, whose answer changes at a chosen moment."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = tuple[int, bytes, dict[str, str]]


class ScriptedServer:
    """Answers ``before`` until ``ready_at`` (a time.monotonic value), then ``after``; counts requests."""

    def __init__(self, before: Answer, after: Answer, ready_at: float = 0.0) -> None:
        self.before, self.after, self.ready_at = before, after, ready_at
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append((self.path, dict(self.headers)))
                status, body, headers = server.answer()
                self.send_response(status)
                for key, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def answer(self) -> Answer:
        return self.after if time.monotonic() >= self.ready_at else self.before

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def scripted(before: Answer, after: Answer, ready_in: float = 0.0) -> Iterator[ScriptedServer]:
    server = ScriptedServer(before, after, time.monotonic() + ready_in)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


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


def at(delay: float, action: Callable[[], object]) -> threading.Timer:
    """Run ``action`` after ``delay`` seconds, in the background."""
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()
    return timer
