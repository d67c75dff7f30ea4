"""Adopting Flyway's history (``adopt: flyway``): its successful versioned rows become ours, read-only.

Flyway 10's ``flyway_schema_history`` (as its documentation gives it): ``installed_rank``, ``version``,
``description``, ``type`` (``SQL``, ``JDBC``, ``BASELINE``, ...), ``script``, ``checksum`` (a CRC32, not comparable
with our sha256), ``installed_by``, ``installed_on``, ``execution_time`` (ms), ``success``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prefect_init.errors import StepFailed


@dataclass(frozen=True)
class FlywayRow:
    version: str | None
    description: str
    type: str
    script: str
    installed_by: str
    installed_on: datetime
    execution_time: int
    success: bool


def read_flyway(conn: Any, table: str, schema: str | None) -> list[FlywayRow] | None:
    """Flyway's rows in installed order, or None when its table does not exist. Only SELECTs."""
    from psycopg import sql

    exists = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"' if schema else f'"{table}"',)).fetchone()
    if exists is None or exists[0] is None:
        return None
    identifier = sql.Identifier(schema, table) if schema else sql.Identifier(table)
    rows = conn.execute(sql.SQL("SELECT version, description, type, script, installed_by, installed_on, "
                                "execution_time, success FROM {} ORDER BY installed_rank").format(identifier))
    return [FlywayRow(*row) for row in rows.fetchall()]


def adoptable(rows: list[FlywayRow], table: str) -> list[FlywayRow]:
    """The successful versioned rows; a failed row stops the adoption (it needs `flyway repair` or a look)."""
    failed = [r for r in rows if not r.success]
    if failed:
        first = failed[0]
        label = f"V{first.version}" if first.version else first.script
        raise StepFailed(f"adopt: flyway: {table} records a failed migration, {label} ({first.script}, "
                         f"installed {first.installed_on:%Y-%m-%d %H:%M}): fix the database and run `flyway repair`, "
                         "then start again; nothing was adopted")
    return [r for r in rows if r.version is not None]
