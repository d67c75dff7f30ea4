"""No answer holds a pod back: a download (the config step) and a readiness probe (the http wait target) each have
one deadline over the whole exchange, not httpx's per-read timeouts, which a server sending one byte just before
each would reset for ever.

The servers are real, on 127.0.0.1: a thread per connection sends the headers, then one byte every 0.2 s.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_cli
from tests.kinds.test_config import _assert_untouched, _previous, _step
from tests.kinds.test_config import _spec as config_spec

STEP_TIMEOUT = "60s"  # far past every bound asserted below: what ends an attempt is request_timeout


class _RawServer:
    """An HTTP server on 127.0.0.1 that reads each request's head and hands the connection to ``answer``, with the
    index of its entry in ``sent`` (the bytes of body sent on that connection); counts the requests."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.requests = 0
        self.sent: list[int] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, suppress(OSError):
            conn.settimeout(30)
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            with self._lock:
                self.requests += 1
                index = len(self.sent)
                self.sent.append(0)
            self.answer(conn, index)

    def answer(self, conn: socket.socket, index: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


class Trickler(_RawServer):
    """An HTTP server on 127.0.0.1 that answers 200 and then sends its body one byte every ``every`` seconds;
    after ``stall_after`` bytes it sends nothing more but keeps the connection open. ``length``: announce a
    Content-Length (else the body ends when the connection closes, HTTP/1.0 style). Counts the requests."""

    def __init__(self, every: float = 0.2, stall_after: int | None = None, length: bool = True) -> None:
        self.every, self.stall_after, self.length = every, stall_after, length
        super().__init__()

    def answer(self, conn: socket.socket, index: int) -> None:
        body = b"key: " + b"v" * 100_000 + b"\n"  # valid YAML at any length past its first 5 bytes
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/yaml\r\n"
        head += f"Content-Length: {len(body)}\r\n" if self.length else "Connection: close\r\n"
        conn.sendall(head.encode() + b"\r\n")
        for n, byte in enumerate(body):  # at most 100 kB * 0.2 s: the stop event ends it first
            if self.stall_after is not None and n >= self.stall_after:
                self.stop.wait(120)  # silent, the connection open, until the test ends
                return
            conn.sendall(bytes([byte]))
            self.sent[index] += 1
            if self.stop.wait(self.every):
                return


@contextmanager
def trickler(**kwargs: Any) -> Iterator[Trickler]:
    server = Trickler(**kwargs)
    try:
        yield server
    finally:
        server.close()


def _config(tmp_path: Path, url: str, dest: Path, request_timeout: str, retries: int = 0) -> Path:
    return config_spec(tmp_path, {"url": url, "dest": str(dest), "request_timeout": request_timeout, "format": "yaml"},
                       retries=retries, timeout=STEP_TIMEOUT)


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
def test_a_trickling_download_fails_within_request_timeout_and_is_retried(tmp_path: Path, length: bool) -> None:
    """One byte every 0.2 s: each attempt ends within request_timeout (1 s) + 1 s, retried (2 attempts), and
    ``dest`` is untouched. Without a Content-Length, the body cut at the deadline must not pass for whole (it is
    valid YAML at any length)."""
    dest = _previous(tmp_path)
    with trickler(length=length) as server:
        result = run_cli("run", str(_config(tmp_path, server.url("/c.yaml"), dest, "1s", retries=1)), timeout=30)
    step = _step(tmp_path)
    assert result.code == 1, result.output
    assert step["attempts"] == 2, step  # retryable
    assert server.requests == 2
    assert all(sent >= 2 for sent in server.sent), server.sent  # it did trickle: bytes arrived in each attempt
    # two attempts of at most request_timeout + 1 s each, and the 50 ms pause between them
    assert step["duration_s"] < 2 * (1 + 1), step
    assert "did not finish within request_timeout (1s)" in step["error"], step["error"]
    assert "bytes of the body had arrived: the server or the network is too slow" in step["error"]
    _assert_untouched(dest)


def test_a_download_that_trickles_then_stalls_ends_at_its_deadline(tmp_path: Path) -> None:
    """Bytes for 1.6 s, then silence, request_timeout 2 s: the read blocked on the silent server must end at the
    deadline (2 s from the start), not a read timeout after the last byte (3.6 s)."""
    dest = _previous(tmp_path)
    with trickler(stall_after=8) as server:
        result = run_cli("run", str(_config(tmp_path, server.url("/c.yaml"), dest, "2s")), timeout=30)
    step = _step(tmp_path)
    assert result.code == 1, result.output
    assert server.sent == [8]
    assert step["duration_s"] < 2 + 1, step
    assert "did not finish within request_timeout (2s)" in step["error"], step["error"]
    _assert_untouched(dest)


def _wait(tmp_path: Path, url: str, timeout: str) -> Path:
    path = tmp_path / "init.yaml"
    path.write_text("\n".join([
        "version: 1", "name: waiting", "status_file: status.json", "steps:", "  - name: deps",
        f"    timeout: {timeout}", "    retries: 0", "    attempt_timeout: 500ms", "    wait:",
        f"      - http: {url}", "        contains: never-there"]) + "\n")
    return path


def test_a_trickling_probe_is_not_ready_within_its_own_timeout(tmp_path: Path) -> None:
    """Each probe of a trickling answer ends at the probe's own timeout (attempt_timeout 500 ms): the wait asks
    again and again, and the step ends at its deadline with the reason in words."""
    with trickler() as server:
        result = run_cli("run", str(_wait(tmp_path, server.url("/health"), "3s")), timeout=30)
    step = _step(tmp_path)
    assert result.code == 1, result.output
    # 3 s of probes of at most 0.5 s each (plus pauses of at most 0.25 s): more than one; a probe held by the
    # trickle would be the only one
    assert server.requests >= 3, server.requests
    assert step["duration_s"] < 3 + 1, step
    # the probe's own timeout, or the time left before the step's deadline if less
    assert re.search(r"the answer did not finish within 0\.[1-5]s \(", step["error"]), step["error"]


def test_a_probe_that_trickles_then_stalls_ends_at_its_timeout(tmp_path: Path) -> None:
    """A probe whose answer stops after 2 bytes: the read blocked on it ends at the probe's timeout."""
    with trickler(stall_after=2) as server:
        result = run_cli("run", str(_wait(tmp_path, server.url("/health"), "3s")), timeout=30)
    step = _step(tmp_path)
    assert result.code == 1, result.output
    assert server.requests >= 3, server.requests
    # the probe's own timeout, or the time left before the step's deadline if less
    assert re.search(r"the answer did not finish within 0\.[1-5]s \(", step["error"]), step["error"]


class Flood(_RawServer):
    """An HTTP server on 127.0.0.1 whose answer never ends, sent as fast as the client reads it (no length: the
    body would end when the connection closes); counts the requests and the bytes sent on each."""

    def answer(self, conn: socket.socket, index: int) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        chunk = b"x" * 65536
        while not self.stop.is_set() and self.sent[index] < 1024 * 1024 * 1024:  # 1 GiB at most
            conn.sendall(chunk)  # until the client closes: a broken pipe ends it
            self.sent[index] += len(chunk)



def test_an_endless_answer_does_not_hold_a_probe(tmp_path: Path) -> None:
    """A readiness answer that never ends, as fast as it is read: each probe reads at most 1 MiB of it, is not
    ready in words, and the wait asks again; the server could send only that much (and what the sockets'
    buffers hold) on each connection."""
    from prefect_init.kinds.wait.targets.http import MAX_BODY

    server = Flood()
    try:
        result = run_cli("run", str(_wait(tmp_path, f"http://127.0.0.1:{server.port}/health", "3s")), timeout=30)
    finally:
        server.close()
    step = _step(tmp_path)
    assert result.code == 1, result.output
    assert len(server.sent) >= 3, server.sent  # each probe ended and another came
    assert "answer does not contain the expected text" in step["error"], step["error"]
    # what a probe read is bounded; loopback buffers may hold a few MiB more than it took, never 1 GiB
    assert max(server.sent) < MAX_BODY + 16 * 1024 * 1024, server.sent
