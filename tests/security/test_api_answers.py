"""No answer of a Prefect API holds a pod back: an HTML page (an SSO or proxy login), ``{}`` instead of a run, a
body or headers trickled a byte at a time, an endless body. Each is played by a raw HTTP server on 127.0.0.1
against the real ``prefect-init run``: the step runs, the exit code is the steps', one warning line in words, no
traceback, bounded time and memory."""

from __future__ import annotations

import gzip
import json
import re
import socket
import subprocess
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from prefect_init.prefect_adapter.discovery import PROBE_TIMEOUT
from prefect_init.prefect_adapter.observer import START_BUDGET, Observer
from prefect_init.prefect_adapter.rest import ApiLost, ApiWrong, PrefectRest
from prefect_init.run.outcome import FAILED, SUCCEEDED, RunOutcome, StepOutcome
from tests.helpers import CLI, clean_env, write_spec

Behaviour = Callable[["BadApi", socket.socket, str, str], None]

HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><form>SSO login</form></body></html>"
SLACK = 2.5
"""Seconds for an interpreter's start and the step's own on a busy shared machine (a local run: 0.3 s)."""
AT_ONCE = 3.0
"""Seconds from launch to the step when the API's first answer is plainly not the API's: below the start's budget
(4 s), so an answer tried again until the budget ran out fails the test."""
MEMORY_BOUND_MB = 150
"""Peak resident memory of prefect-init while an endless answer streams in (a local run peaks near 60 MB; the
rendered container limit is 320 Mi). Today's code read the whole answer: 3.1 GB for 1.5 GB."""


@dataclass
class BadApi:
    """A raw HTTP/1.1 server on 127.0.0.1: ``behaviour(api, conn, method, path)`` answers each request as badly as
    it likes; records each request and counts the bytes of answers it wrote."""

    behaviour: Behaviour
    requests: list[tuple[str, str]] = field(default_factory=list)
    bodies: list[tuple[str, bytes]] = field(default_factory=list)
    """Each request's path and body."""
    sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    hung_up: threading.Event = field(default_factory=threading.Event)
    """Set when a write fails: the client closed the connection."""

    def __post_init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/api"
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn, suppress(OSError):
            conn.settimeout(30)
            buffer = b""
            while not self.stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                               if line.lower().startswith("content-length:")), 0)
                while len(buffer) < length:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                body, buffer = buffer[:length], buffer[length:]
                with self.lock:
                    self.requests.append((method, path.removeprefix("/api")))
                    self.bodies.append((path.removeprefix("/api"), body))
                self.behaviour(self, conn, method, path.removeprefix("/api"))

    def write(self, conn: socket.socket, data: bytes) -> None:
        try:
            conn.sendall(data)
        except OSError:
            self.hung_up.set()  # the client closed the connection
            raise
        with self.lock:
            self.sent += len(data)

    def answer(self, conn: socket.socket, status: int, body: bytes, kind: str = "application/json") -> None:
        self.write(conn, f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n\r\n"
                   .encode() + body)

    def trickle(self, conn: socket.socket, data: bytes, every: float = 0.05) -> None:
        """``data`` a byte at a time, until it is all sent, the client hangs up or the test ends."""
        for byte in data:
            if self.stop.wait(every):
                return
            self.write(conn, bytes([byte]))

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@contextmanager
def bad_api(behaviour: Behaviour) -> Iterator[BadApi]:
    api = BadApi(behaviour)
    try:
        yield api
    finally:
        api.close()


def healthy_then(rest: Behaviour) -> Behaviour:
    """``/health`` answers as Prefect's does (``true``); every other call as ``rest`` does."""

    def behaviour(api: BadApi, conn: socket.socket, method: str, path: str) -> None:
        if path == "/health":
            api.answer(conn, 200, b"true")
        else:
            rest(api, conn, method, path)
    return behaviour


def html_page(api: BadApi, conn: socket.socket, method: str, path: str) -> None:
    api.answer(conn, 200, HTML, "text/html; charset=utf-8")


def empty_object(api: BadApi, conn: socket.socket, method: str, path: str) -> None:
    api.answer(conn, 200, b"{}")


def trickled_body(api: BadApi, conn: socket.socket, method: str, path: str) -> None:
    body = b'{"id": "' + b"0" * 100_000 + b'"}'
    api.write(conn, f"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
              .encode())
    api.trickle(conn, body)


def trickled_headers(api: BadApi, conn: socket.socket, method: str, path: str) -> None:
    api.trickle(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Pad: " + b"a" * 100_000 + b"\r\n\r\n")


FLOW_RUN = "00000000-0000-4000-8000-000000000001"

ENDLESS_LIMIT = 3 * 1024 ** 3
"""The endless answer stops here (3 GiB) so that a broken client cannot keep the test's server busy for ever."""


def endless_body(api: BadApi, conn: socket.socket, method: str, path: str) -> None:
    api.write(conn, b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
              b'{"id": "')
    chunk = b"0" * 65536
    while api.sent < ENDLESS_LIMIT and not api.stop.is_set():
        api.write(conn, chunk)


@dataclass
class Run:
    code: int
    stderr: str
    seconds: float
    first_step: float | None
    """Seconds from launch to the step's marker file (its modification time)."""
    peak_mb: float
    """VmHWM of the child: its own peak resident memory (read from /proc while it runs)."""


def run_against(api_url: str, directory: Path, limit: float = 90) -> Run:
    marker = directory / "marker"
    spec = write_spec(directory, f"""
        version: 1
        name: bad-api
        status_file: status.json
        steps:
          - name: mark
            command: [touch, {marker}]
        """)
    launched = time.time()
    started = time.monotonic()
    proc = subprocess.Popen([*CLI, "run", str(spec)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=clean_env(PREFECT_API_URL=api_url))
    peak = [0.0]

    def watch() -> None:  # VmHWM only grows: the last reading before the child exits is its peak
        while proc.poll() is None:
            with suppress(OSError, ValueError):
                text = Path(f"/proc/{proc.pid}/status").read_text()
                found = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
                if found:
                    peak[0] = max(peak[0], int(found.group(1)) / 1024)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        _, stderr = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(f"prefect-init run still running after {limit:g} s (the step ran: {marker.exists()}); "
                    f"stderr: {stderr[-2000:]}")
    seconds = time.monotonic() - started
    watcher.join(5)
    first = marker.stat().st_mtime - launched if marker.exists() else None
    return Run(proc.returncode, stderr, seconds, first, peak[0])


def assert_ran_without_api(run: Run, directory: Path, api: BadApi, words: str, bound: float) -> None:
    """The step ran within ``bound`` seconds of launch; the status file says so; stderr has one warning line
    (naming the API and ``words``) and no traceback; the exit code is the step's."""
    assert run.code == 0, f"exit {run.code}; stderr: {run.stderr[-3000:]}"
    assert run.first_step is not None, f"the step never ran; stderr: {run.stderr[-3000:]}"
    assert run.first_step < bound, f"the step began {run.first_step:.1f} s after launch (bound {bound:g} s)"
    status = json.loads((directory / "status.json").read_text())
    assert status["status"] == "succeeded" and status["steps"][0]["status"] == "succeeded", status
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1, f"expected one warning line: {run.stderr}"
    assert api.url in warnings[0] and words in warnings[0], warnings[0]


def test_an_html_page_instead_of_the_api_runs_the_steps(tmp_path: Path) -> None:
    with bad_api(html_page) as api:
        run = run_against(api.url, tmp_path)
    assert ("POST", "/flows/") in api.requests, api.requests  # the page was the answer to the start's first call
    assert_ran_without_api(run, tmp_path, api, "an HTML page, not the API (an SSO or proxy login?)", AT_ONCE)


def test_an_empty_object_instead_of_a_flow_runs_the_steps(tmp_path: Path) -> None:
    with bad_api(healthy_then(empty_object)) as api:
        run = run_against(api.url, tmp_path)
    assert ("POST", "/flows/") in api.requests, api.requests
    assert_ran_without_api(run, tmp_path, api, "without a flow's id", AT_ONCE)


def test_a_body_trickled_a_byte_at_a_time_runs_the_steps(tmp_path: Path) -> None:
    with bad_api(healthy_then(trickled_body)) as api:
        run = run_against(api.url, tmp_path)
    assert ("POST", "/flows/") in api.requests, api.requests
    assert api.sent > 0, "the server never began its answer"
    assert_ran_without_api(run, tmp_path, api, "does not take writes (no whole answer within 4 s)",
                           START_BUDGET + SLACK)


def test_headers_trickled_on_health_run_the_steps(tmp_path: Path) -> None:
    with bad_api(trickled_headers) as api:
        run = run_against(api.url, tmp_path)
    assert api.requests and api.requests[0] == ("GET", "/health"), api.requests
    assert_ran_without_api(run, tmp_path, api, "does not answer", PROBE_TIMEOUT + SLACK)


def test_an_endless_body_is_read_to_a_bound_only(tmp_path: Path) -> None:
    with bad_api(healthy_then(endless_body)) as api:
        run = run_against(api.url, tmp_path)
        sent = api.sent
    assert ("POST", "/flows/") in api.requests, api.requests
    assert sent > 1024 * 1024, f"the server sent only {sent} bytes: not the endless answer the test means"
    assert_ran_without_api(run, tmp_path, api, "with more than 1 MiB, larger than", AT_ONCE)
    # what the server could write: the client's cap (1 MiB) and what the sockets' buffers hold
    assert sent < 32 * 1024 * 1024, f"the client read {sent / 2 ** 20:.0f} MiB of an endless answer"
    assert 0 < run.peak_mb < MEMORY_BOUND_MB, f"peak memory {run.peak_mb:.0f} MB (bound {MEMORY_BOUND_MB} MB)"


# -- the safeguards one by one, on the pod side's REST client and observer -----------------------------------------


def answering(status: int, body: bytes, kind: str = "application/json", **headers: str) -> Behaviour:
    extra = "".join(f"{key.replace('_', '-')}: {value}\r\n" for key, value in headers.items())

    def behaviour(api: BadApi, conn: socket.socket, method: str, path: str) -> None:
        api.write(conn, f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n{extra}"
                  "\r\n".encode() + body)
    return behaviour


@pytest.mark.parametrize(("body", "words"), [
    (b"[]", "without a flow's id (a list)"),
    (b'{"id": 5}', "without a flow's id (an \"id\" that is not a UUID)"),
    (b'{"id": "../../deployments/x"}', "without a flow's id (an \"id\" that is not a UUID)"),
    (b'{"name": "prefect-init"}', "without a flow's id (an object without an \"id\")"),
    (b'"a string"', "without a flow's id (a string)"),
    (b"null", "without a flow's id (an empty body)"),
    (b"not json at all", "with a body that is not JSON"),
    (b"  <html>no content type</html>", "with an HTML page"),
])
def test_an_answer_of_the_wrong_shape_ends_the_start_at_once(body: bytes, words: str) -> None:
    """Every shape that is not a flow: an error in words at the first answer, not tried again for the start's
    budget, and never a value that could steer a later call's path."""
    with bad_api(answering(200, body, "text/plain")) as api:
        observer = Observer(PrefectRest(api.url), "shapes", {}, heartbeat_seconds=None)
        started = time.monotonic()
        with pytest.raises(ApiWrong) as raised:
            observer.start({}, [])
        took = time.monotonic() - started
    assert words in str(raised.value), str(raised.value)
    assert api.requests == [("POST", "/flows/")], api.requests  # asked once
    assert took < 1.0, f"{took:.2f} s"


def test_a_redirect_is_not_followed() -> None:
    """An SSO proxy's redirect to its login page: named, not followed (the API key never goes to its host)."""
    with bad_api(answering(302, b"", Location="http://127.0.0.1:9/login")) as api, \
            pytest.raises(ApiWrong) as raised:
        PrefectRest(api.url).call("POST", "/flows/", {"name": "x"}, timeout=2)
    assert "with a redirect (HTTP 302), not the API (an SSO or proxy login?)" in str(raised.value)
    assert api.requests == [("POST", "/flows/")], api.requests


def test_a_compressed_answer_is_decoded_to_the_cap_only() -> None:
    """An answer in gzip although ``identity`` was asked for: decoded, but never more than the cap out of one
    chunk (32 MiB of zeros are 32 KiB of gzip). The peak of what Python allocated stays near the cap."""
    bomb = gzip.compress(b"0" * 32 * 1024 * 1024)
    with bad_api(answering(200, bomb, Content_Encoding="gzip")) as api:
        rest = PrefectRest(api.url)
        tracemalloc.start()
        try:
            with pytest.raises(ApiWrong) as raised:
                rest.call("POST", "/flows/", {"name": "x"}, timeout=5)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert "with more than 1 MiB" in str(raised.value)
    assert peak < 8 * 1024 * 1024, f"{peak / 2 ** 20:.1f} MiB allocated"


def test_a_call_past_its_deadline_closes_its_connection() -> None:
    """Headers trickled on a call (not the probe): the caller is free at the deadline, and the connection is
    closed under the abandoned thread: the server's next write fails, a pod keeps no socket for the trickle."""
    with bad_api(trickled_headers) as api:
        rest = PrefectRest(api.url)
        raised: list[Exception] = []

        def call() -> None:
            try:
                rest.call("POST", "/flows/", {"name": "x"}, timeout=1.0)
            except ApiLost as exc:
                raised.append(exc)

        caller = threading.Thread(target=call, daemon=True)
        started = time.monotonic()
        caller.start()
        caller.join(10)  # a call without its watchdog would wait for 100,000 bytes trickled: fail, not hang
        took = time.monotonic() - started
        assert api.sent > 0, "the trickle never began"
        hung_up = api.hung_up.wait(5)
    assert raised and "no answer within 1 s" in str(raised[0]), f"{raised} after {took:.1f} s"
    assert took < 1.5, f"{took:.2f} s"
    assert hung_up, f"the connection was still open 5 s after the call was abandoned ({api.sent} bytes trickled)"


def test_a_trickled_body_stops_being_read_at_the_deadline() -> None:
    """The reader's own check, without the caller's watchdog: an answer trickled a byte at a time is read until
    the call's deadline, then given up (the thread that reads it ends)."""
    from prefect_init.prefect_adapter.rest import _Exchange

    with bad_api(trickled_body) as api:
        rest = PrefectRest(api.url)
        exchange = _Exchange(rest.client, "POST", "/flows/", {}, time.monotonic() + 1.0, 1.0, True)
        reader = threading.Thread(target=exchange.run, daemon=True)
        started = time.monotonic()
        reader.start()
        reader.join(10)  # a reader without its check would read for 5,000 s: the test fails, not hangs
        took = time.monotonic() - started
        reading = reader.is_alive()  # before the server closes the connection, which would end any reader
    assert not reading, "the reader was still reading 10 s after its deadline of 1 s"
    assert isinstance(exchange.error, ApiLost) and "no whole answer within 1 s" in str(exchange.error)
    assert took < 2.0, f"{took:.2f} s"


def test_a_login_page_mid_run_ends_the_record_not_the_run() -> None:
    """An SSO session that expires mid-run: the API's answers become a login page. The record ends (no call tried
    again), the warning line names the page."""
    with bad_api(html_page) as api:
        observer = Observer(PrefectRest(api.url), "expired", {}, flow_run_id=FLOW_RUN, heartbeat_seconds=None)
        observer.start({}, [])
        observer.log(None, "INFO", "a line")
        outcome = RunOutcome("expired", started_at="2026-01-01T00:00:00Z")
        outcome.steps = [StepOutcome("only", "command", SUCCEEDED, attempts=1, duration_s=0.1)]
        observer.finish(outcome)
        started = time.monotonic()
        warning = observer.close(budget=4.0)
        took = time.monotonic() - started
    assert warning is not None and "an HTML page, not the API (an SSO or proxy login?)" in warning, warning
    assert api.requests and len(api.requests) == len(set(api.requests)), api.requests  # none tried again
    assert took < 2.0, f"{took:.2f} s"


# -- the summary artifact: a step's output is text in it, never HTML, an image, a link or a broken table ------------

HOSTILE = ("<img src=x onerror=alert(1)> | forged | cells | <script>alert(2)</script>\n```\nfenced\n"
           "![tracker](http://127.0.0.1:9/t.png) [click](javascript:alert(3)) a\\|b `code`")


def render(markdown: str) -> str:
    """HTML as a markdown renderer that lets raw HTML through would make it (the worst case for the UI)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)


def table_rows(html: str) -> list[list[str]]:
    """The text of each body row's cells."""
    import html as htmlib

    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [[htmlib.unescape(re.sub(r"<[^>]+>", "", cell)) for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def assert_inert(html: str) -> None:
    for tag in ("<img", "<script", "<a ", "<pre", "<code>fenced"):
        assert tag not in html, f"{tag} in the artifact's HTML:\n{html}"


def test_the_renderer_would_run_what_is_not_escaped() -> None:
    """The positive control of the scans below: the same renderer turns the raw text into an image, a script, a
    link and more cells."""
    html = render(f"| a | b |\n|---|---|\n| x | {HOSTILE.splitlines()[0]} |\n")
    assert "<img" in html, html
    assert len(table_rows(html)[0]) == 2 and "forged" not in html, html  # the pipes cut the row


def test_a_steps_output_is_text_in_the_artifact() -> None:
    """The error of a failed step (which holds its command's last output), an output's value and the pod's identity
    each hold HTML, pipes, a fence, an image and a link: the artifact shows them as text, in their own cells."""
    outcome = RunOutcome("hostile", started_at="2026-01-01T00:00:00Z", identity={"pod": "p`<b>x</b>"})
    outcome.steps = [
        StepOutcome("probe", "command", FAILED, attempts=1, duration_s=0.1, error=f"exited with 3\n{HOSTILE}"),
        StepOutcome("emit", "command", SUCCEEDED, attempts=1, duration_s=0.1, outputs={"page": HOSTILE})]
    html = render(outcome.markdown())
    assert_inert(html)
    assert "<b>" not in html, html
    steps, outputs = (table_rows(table) for table in html.split("</table>")[:2])
    assert [len(row) for row in steps] == [6, 6] and [len(row) for row in outputs] == [3], html
    one_line = " ".join(HOSTILE.splitlines())
    assert steps[0][5] == f"exited with 3 {one_line}", steps[0][5]
    assert outputs[0][2] == one_line, outputs[0][2]


def good_api(api: BadApi, conn: socket.socket, method: str, path: str) -> None:
    if path == "/health":
        api.answer(conn, 200, b"true")
    elif path in ("/flows/", "/flow_runs/"):
        api.answer(conn, 201, json.dumps({"id": str(uuid.uuid4())}).encode())
    else:
        api.answer(conn, 201, b"{}")


def test_a_commands_output_reaches_the_artifact_as_text(tmp_path: Path) -> None:
    """The real CLI, a command printing HTML and a fence and failing, an API that records: the artifact it is sent
    shows the output as text."""
    output = tmp_path / "output.txt"
    output.write_text(HOSTILE + "\n")
    spec = write_spec(tmp_path, f"""
        version: 1
        name: hostile-output
        status_file: status.json
        steps:
          - name: probe
            command: [sh, -c, "cat {output}; exit 3"]
        """)
    with bad_api(good_api) as api:
        proc = subprocess.run([*CLI, "run", str(spec)], capture_output=True, text=True, timeout=60,
                              env=clean_env(PREFECT_API_URL=api.url))
        artifacts = [json.loads(body) for path, body in api.bodies if path == "/artifacts/"]
    assert proc.returncode == 1, proc.stderr
    assert len(artifacts) == 1, api.requests
    markdown = artifacts[0]["data"]
    assert "onerror" in markdown and "fenced" in markdown, markdown  # the output is in it
    html = render(markdown)
    assert_inert(html)
    rows = table_rows(html)
    assert len(rows) == 1 and len(rows[0]) == 6, html
    assert "<img src=x onerror=alert(1)> | forged | cells |" in rows[0][5], rows[0][5]
