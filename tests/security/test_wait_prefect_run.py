"""The ``prefect_run`` wait target reads the Prefect API's answers as the observer does: bounded as a whole (time
and bytes), their shape checked. A login page, ``{}``, an endless or trickled answer is "not ready" in words, the
step fails at its own deadline, and nothing from the answer becomes part of a later call's path."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.helpers import run_cli, write_spec
from tests.security.test_api_answers import (
    BadApi,
    Behaviour,
    bad_api,
    empty_object,
    endless_body,
    html_page,
    trickled_body,
)


def _wait_spec(directory: Path, url: str) -> Path:
    return write_spec(directory, f"""
        version: 1
        name: waits-for-release
        status_file: status.json
        steps:
          - name: release
            timeout: 4s
            retries: 0
            wait:
              - prefect_run: {{deployment: prefect-init/app, tag: release-1, api_url: "{url}"}}
        """)


def injected_id(api: BadApi, conn: socket.socket, method: str, path: str) -> None:
    """A deployment id that is a path: taken as it is, the next call would go to /admin/..."""
    if path.startswith("/deployments/name/"):
        api.answer(conn, 200, b'{"id": "../../admin/drop?x="}')
    else:
        api.answer(conn, 200, b"[]")


@pytest.mark.parametrize(("behaviour", "words"), [
    (html_page, "not the API"), (empty_object, "without a run's or deployment's id"),
    (endless_body, "more than 1 MiB"), (trickled_body, "did not answer"), (injected_id, "without a run's"),
])
def test_a_bad_answer_is_not_ready_in_words_within_the_deadline(tmp_path: Path, behaviour: Behaviour,
                                                                 words: str) -> None:
    with bad_api(behaviour) as api:
        spec = _wait_spec(tmp_path, api.url)
        started = time.monotonic()
        result = run_cli("run", str(spec), "--local", timeout=60)
        took = time.monotonic() - started
        paths = [path for _, path in api.requests]
    assert result.code == 1, result.stderr
    assert words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert took < 4 + 6, f"{took:.1f} s for a 4 s step"  # the step's deadline and an interpreter's start
    assert paths and all(p.startswith(("/deployments/name/prefect-init/app", "/flow_runs/filter",
                                       "/task_runs/filter")) for p in paths), paths
    if behaviour is endless_body:  # each attempt stops near 1 MiB (and the socket buffers), never reads on
        per_call = api.sent / len(paths)
        assert per_call < 16 * 1024 * 1024, f"{per_call:.0f} bytes sent per call of an endless answer"
