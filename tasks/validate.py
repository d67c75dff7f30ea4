"""Prefect tasks for the ``validate`` step kind."""

from __future__ import annotations

from prefect import task

from prefect_init.kinds import validate
from prefect_init.tasks._common import TASK_OPTIONS, run_step_model


@task(name="validate-files", **TASK_OPTIONS)
def validate_files(files: str | list[str], required: list[str] | None = None, schema: str | None = None,
                   format: str = "auto", non_empty: bool = True, timeout: float = 60.0) -> str:
    """Check files (JSON, YAML, TOML, env): present, non-empty, required keys, JSON Schema. Never logs a value.

    Every problem of every file is in one ``StepFailed`` message, e.g.
    ``/secrets/app.json: missing required keys: db_password, redis_password``.

    Example:
        ```python
        from prefect import flow
        from prefect_init.tasks.validate import validate_files

        @flow
        def check_secrets():
            validate_files("/secrets/app-secrets.json", required=["api_key", "db_password"])
        ```
    """
    spec = validate.ValidateSpec.model_validate({"file": files, "required": required or [], "schema": schema,
                                                 "format": format, "non_empty": non_empty})
    return run_step_model(validate.Step.model_validate({"name": "validate", "validate": spec}), timeout)
