"""Prefect tasks for the ``config`` step kind."""

from __future__ import annotations

from typing import Any

from prefect import task

from prefect_init.kinds import config
from prefect_init.tasks._common import TASK_OPTIONS, run_step_model


@task(name="fetch-config", **TASK_OPTIONS)
def fetch_config(url: str, dest: str, format: str = "auto", required: list[str] | None = None,
                 schema: str | None = None, sha256: str | None = None, headers_from_files: dict[str, str] | None = None,
                 max_bytes: int | str = "10MiB", timeout: float = 120.0, **options: Any) -> str:
    """Download a configuration file, check it (parse, required keys, schema, checksum), swap it in atomically.

    Args:
        url: ``http(s)://`` or ``file://``.
        dest: where to write it; replaced only when everything checks out, left untouched when identical.
        format: ``yaml``, ``json``, ``toml`` or ``auto`` (content type, then the URL's or dest's suffix).
        required: dotted keys that must be present and non-empty.
        schema: a JSON Schema file.
        sha256: a pinned checksum of the body.
        headers_from_files: header name -> file holding its value (a secret, masked everywhere).
        max_bytes: size limit, enforced while streaming.
        timeout: seconds for the task (one attempt); add ``retries`` with ``with_options``.
        options: any other key of the spec's ``config:`` (``mode``, ``follow_redirects``, ``request_timeout``).

    Returns:
        ``"written N bytes"`` or ``"unchanged"``. Connection errors, 5xx and 429 raise ``RetryableError``.

    Example:
        ```python
        from prefect import flow
        from prefect_init.tasks.config import fetch_config

        @flow
        def configure():
            fetch_config.with_options(retries=3)(
                "http://config-server:8000/config/myapp", "/config/app.yaml",
                required=["database.host", "database.port"])
        ```
    """
    headers = {name: {"file": path} for name, path in (headers_from_files or {}).items()}
    spec = config.ConfigSpec.model_validate({"url": url, "dest": dest, "format": format, "required": required or [],
                                             "schema": schema, "sha256": sha256, "headers": headers,
                                             "max_bytes": max_bytes, **options})
    return run_step_model(config.Step(name="config", config=spec), timeout)
