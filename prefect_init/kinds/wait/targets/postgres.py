"""``postgres: DSN``: ready when a connection succeeds and ``sql`` (default ``SELECT 1``) runs.

The DSN's password is masked in every log line and error.
"""

from __future__ import annotations

from prefect_init.kinds.wait.loop import NotReady
from prefect_init.kinds.wait.targets import Checker, SimpleChecker, TargetBase
from prefect_init.runtime.context import RunContext


def pg_reason(exc: Exception) -> str:
    """psycopg's multi-line message, down to what matters: ``connection refused``, ``the database system is
    starting up``, ``password authentication failed for user "app"``."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    line = next((ln for ln in lines if "FATAL:" in ln or "ERROR:" in ln or "failed:" in ln), lines[0] if lines else "")
    for separator in ("failed:", "FATAL:", "ERROR:"):
        line = line.rsplit(separator, 1)[-1].strip()
    if line.lower() in ("connection refused", "timeout expired"):
        return line.lower()
    return line[:200] or type(exc).__name__


class Target(TargetBase):
    key = "postgres"
    postgres: str
    sql: str = "SELECT 1"

    def label(self) -> str:
        return self.postgres

    def checker(self, ctx: RunContext) -> Checker:
        def check(timeout: float) -> None:
            import psycopg

            try:
                # libpq's connect_timeout is whole seconds, at least 2
                with psycopg.connect(self.postgres, connect_timeout=max(2, round(timeout)), autocommit=True) as conn:
                    conn.execute(self.sql)
            except psycopg.Error as exc:
                raise NotReady(pg_reason(exc)) from None

        return SimpleChecker(check)
