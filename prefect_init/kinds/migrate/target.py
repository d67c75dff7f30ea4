"""``migrations: {database: DSN, version: N}``: ready when the migration history reaches version N.

Lets every pod wait for the pre-rollout migration Job instead of migrating itself. Ready when a successful row
has version N, or (for numbered versions) a higher one.
"""

from __future__ import annotations

from prefect_init.kinds.migrate.history import HistoryTable, parse_version
from prefect_init.kinds.wait.loop import NotReady
from prefect_init.kinds.wait.targets import Checker, SimpleChecker, TargetBase
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.redaction import redact


class MigrationsRef(HistoryTable):
    database: str
    version: str


def _numeric(text: str) -> tuple[int, ...] | None:
    try:
        return parse_version(text)
    except ValueError:
        return None


class Target(TargetBase):
    key = "migrations"
    migrations: MigrationsRef

    def label(self) -> str:
        return f"migrations V{self.migrations.version} in {redact(self.migrations.database)}"

    def checker(self, ctx: RunContext) -> Checker:
        ref = self.migrations
        wanted = _numeric(ref.version)

        def check(timeout: float) -> None:
            import psycopg
            from psycopg import sql

            from prefect_init.kinds.wait.targets.postgres import pg_reason

            table = ref.identifier()
            try:
                with psycopg.connect(ref.database, connect_timeout=max(2, round(timeout)), autocommit=True) as conn:
                    rows = conn.execute(sql.SQL("SELECT version FROM {} WHERE success AND version IS NOT NULL")
                                        .format(table)).fetchall()
            except psycopg.errors.UndefinedTable:
                raise NotReady("no history table yet") from None
            except psycopg.Error as exc:
                raise NotReady(pg_reason(exc)) from None
            versions = [v for (v,) in rows]
            if ref.version in versions:
                return
            numeric = [n for n in map(_numeric, versions) if n is not None]
            if wanted is not None and numeric and max(numeric) >= wanted:
                return
            newest = max(numeric) if numeric else None
            raise NotReady("at V" + ".".join(map(str, newest)) if newest else "no migration applied yet")

        return SimpleChecker(check)
