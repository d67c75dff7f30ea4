"""Prefect tasks for the ``files`` step kind."""

from __future__ import annotations

from typing import Any

from prefect import task

from prefect_init.kinds import files
from prefect_init.tasks._common import TASK_OPTIONS, run_step_model


@task(name="ensure-files", **TASK_OPTIONS)
def ensure_files(spec: files.FilesSpec | dict[str, Any], timeout: float = 60.0) -> str:
    """Create directories and files with their mode and owner, idempotently and atomically.

    Args:
        spec: what the spec's ``files:`` key holds: ``dirs`` and ``files``, each with ``path``, ``mode``
            (a quoted octal string) and ``owner`` (``"uid:gid"``); files may have ``content``.
        timeout: seconds for the whole task.

    Returns:
        A short summary, e.g. ``"3 changes"`` or ``"already in place"``.

    Example:
        ```python
        from prefect import flow
        from prefect_init.tasks.files import ensure_files

        @flow
        def prepare_volume():
            ensure_files({"dirs": [{"path": "/data/logs", "mode": "0755", "owner": "1000:1000"}],
                          "files": [{"path": "/data/logs/app.log", "mode": "0666"}]})
        ```
    """
    step = files.Step(name="files", files=files.FilesSpec.model_validate(spec))
    return run_step_model(step, timeout)
