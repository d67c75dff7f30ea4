"""The reference for tests/prefect_adapter/test_side_by_side.py: the DAG of its spec, run by Prefect's own engine.

``python -m tests.prefect_adapter.reference_flow RUN_NAME MARKER``: prepare; flaky (fails once, one retry after
0.1 s) and broken (fails, no retry) after prepare; never after broken. The flow returns its tasks' states, so a
failed task fails the run, as a failed step fails a prefect-init run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from prefect import flow, tags, task

MARKER = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("/nonexistent")


@task(name="prepare")
def prepare() -> None:
    print("prepared")


@task(name="flaky", retries=1, retry_delay_seconds=0.1)
def flaky() -> None:
    if not MARKER.exists():
        MARKER.touch()
        raise RuntimeError("first attempt fails")
    print("second attempt")


@task(name="broken")
def broken() -> None:
    raise RuntimeError("exited with 3")


@task(name="never")
def never() -> None:
    print("never")


@flow(name="reference", log_prints=True)
def reference() -> list[Any]:
    # (prefect's overloads of submit() for a task without parameters leave out wait_for)
    first = prepare.submit()
    failing = broken.submit(wait_for=[first])  # type: ignore[call-overload]
    futures = [first, flaky.submit(wait_for=[first]), failing,  # type: ignore[call-overload]
               never.submit(wait_for=[failing])]  # type: ignore[call-overload]
    for future in futures:
        future.wait()
    return [future.state for future in futures]


if __name__ == "__main__":
    with tags("team-a"):
        reference.with_options(flow_run_name=sys.argv[1])(return_state=True)
