"""Prefect tasks for the ``migrate`` step kind."""

from __future__ import annotations

from typing import Any

from prefect import task

from prefect_init.kinds.migrate import step as migrate
from prefect_init.tasks._common import TASK_OPTIONS, run_step_model


@task(name="migrate-database", **TASK_OPTIONS)
def migrate_database(database: str, dir: str | None = None, command: list[str] | None = None,
                     version: str | None = None, timeout: float = 600.0, **options: Any) -> str:
    """Apply SQL migrations (``dir``) or run a migration tool (``command`` + ``version``) exactly once, however
    many replicas race: they serialize on a PostgreSQL advisory lock keyed on the history table.

    Args:
        database: a libpq DSN (its password is masked in every log line and error).
        dir: a directory of ``V<version>__<description>.sql`` and ``R__<description>.sql`` files.
        command: a migration tool's argv, run under the lock once per ``version``.
        version: the migration set ``command`` applies (e.g. the image tag).
        timeout: seconds, lock wait included.
        options: ``table``, ``schema``, ``target``, ``out_of_order``, ``allow_changed``, ``allow_missing``.

    Returns:
        ``"applied N migrations"``, ``"up to date"``, or the command's summary.

    Example:
        ```python
        import os
        from prefect import flow
        from prefect_init.tasks.migrate import migrate_database

        @flow
        def release():
            migrate_database(os.environ["DATABASE_URL"], dir="/migrations")
        ```
    """
    spec = migrate.MigrateSpec.model_validate({"database": database, "dir": dir, "command": command,
                                               "version": version, **options})
    return run_step_model(migrate.Step(name="migrate", migrate=spec), timeout)
