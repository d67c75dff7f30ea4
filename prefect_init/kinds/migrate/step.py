"""The ``migrate`` step: database migrations that run exactly once however many replicas start at once.

.. code-block:: yaml

    - name: migrate
      migrate:
        database: ${DATABASE_URL}
        dir: /migrations              # V1__create_users.sql, V2__add_index.sql, R__views.sql
        table: prefect_init_schema_history
        schema: public                # where the history table lives (default: the search_path's first)
        target: "5"                   # stop at this version
        out_of_order: false
        allow_changed: false          # an applied file whose checksum changed fails the step ...
        allow_missing: false          # ... and so does an applied file that disappeared
        baseline: "5"                 # a database built before prefect-init: record V1..V5 as there, not run
        # adopt: flyway               # or: take over Flyway's history (flyway_table, flyway_schema)
        lock_timeout: 2s              # the longest any query of the live site queues behind a migration
        statement_timeout: 10m        # optional: the longest one statement of a migration may run
        lint: block                   # block | warn | off: squawk's findings before anything is applied

    - name: migrate-django
      migrate:
        database: ${DATABASE_URL}
        command: [python, manage.py, migrate, --noinput]
        version: ${APP_VERSION}       # the migration set: racing replicas run the command once per version

Each migration waits at most ``lock_timeout`` for a table's lock, is rolled back and retried with growing
pauses until the step's deadline (:mod:`.locks`), and every pending file is linted before the first is applied
(:mod:`.lint`). A migration ``command`` gets ``PGOPTIONS=-c lock_timeout=...``.

Replicas serialize on a PostgreSQL advisory lock keyed on the history table: the first applies, the others wait
(up to the step's deadline), then find nothing left to do. Each migration runs in its own transaction together
with its history row, so a failure or a killed connection leaves neither. A file starting with
``-- prefect-init: no-transaction`` runs outside a transaction (``CREATE INDEX CONCURRENTLY``: one statement per
such file) and is recorded after it succeeds.
"""

from __future__ import annotations

import contextlib
import hashlib
import shlex
import socket
import threading
import time
from typing import Any, Literal

from pydantic import Field, model_validator

from prefect_init.errors import RetryableError, StepCancelled, StepFailed, StepTimeout
from prefect_init.kinds.migrate import lint as lint_
from prefect_init.kinds.migrate.flyway import adoptable, read_flyway
from prefect_init.kinds.migrate.history import (
    Applied,
    HistoryTable,
    Migration,
    load_dir,
    parse_version,
    plan_migrations,
    version_text,
)
from prefect_init.kinds.migrate.locks import (
    Holder,
    LockWatch,
    drop_invalid_index,
    lock_timeout_for,
    pause_after,
    pg_ms,
    statement_locks,
)
from prefect_init.kinds.migrate.status import BASELINE_MARKER
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.redaction import redact
from prefect_init.spec.durations import Duration
from prefect_init.spec.model import Argv, FromFile, StepBase


class MigrateSpec(HistoryTable):
    database: str
    dir: str | None = None
    command: Argv | None = None
    version: str | None = None
    cwd: str | None = None
    env: dict[str, str | FromFile] = Field(default_factory=dict)
    target: str | None = Field(default=None, pattern=r"^\d+([._]\d+)*$")
    out_of_order: bool = False
    allow_changed: bool = False
    allow_missing: bool = False
    baseline: str | None = Field(default=None, pattern=r"^\d+([._]\d+)*$")
    adopt: Literal["flyway"] | None = None
    flyway_table: str = Field(default="flyway_schema_history", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    flyway_schema: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
    lock_timeout: Duration = 2.0
    statement_timeout: Duration | None = None
    lint: Literal["block", "warn", "off"] = "block"

    @model_validator(mode="after")
    def _one_source(self) -> MigrateSpec:
        if (self.dir is None) == (self.command is None):
            raise ValueError("give exactly one of dir (SQL files) or command (a migration tool)")
        if (self.baseline or self.adopt) and self.command is not None:
            raise ValueError("baseline and adopt are for SQL files (dir:), not a migration command")
        if self.baseline and self.adopt:
            raise ValueError("give baseline or adopt, not both")
        if self.lock_timeout <= 0:
            raise ValueError("lock_timeout must be more than 0 (0 would let a migration queue for ever)")
        if self.statement_timeout is not None and self.statement_timeout <= 0:
            raise ValueError("statement_timeout must be more than 0 (leave it out for no limit)")
        if self.command is not None and not self.version:
            raise ValueError("command needs version: (e.g. ${APP_VERSION}), so replicas run it once per version")
        return self


class Step(StepBase):
    kind = "migrate"
    migrate: MigrateSpec

    def describe(self) -> str:
        m = self.migrate
        return f"migrate: {m.dir}" if m.dir else f"migrate: {shlex.join(m.command or [])} (version {m.version})"


class _Watchdog:
    """Cancels the running query at the deadline or on SIGTERM (a blocked lock wait or a long migration)."""

    def __init__(self, conn: Any, ctx: RunContext) -> None:
        self.conn, self.ctx = conn, ctx
        self.done = threading.Event()
        self.fired: str | None = None
        self.thread = threading.Thread(target=self._watch, daemon=True, name=f"{ctx.step_name}-watchdog")

    def _watch(self) -> None:
        while not self.done.is_set():
            if self.ctx.cancel.is_set() or self.ctx.remaining() <= 0:
                self.fired = "cancel" if self.ctx.cancel.is_set() else "deadline"
                with contextlib.suppress(Exception):
                    self.conn.cancel_safe(timeout=2)
                return
            self.ctx.cancel.wait(min(0.05, max(0.001, self.ctx.remaining())))

    def __enter__(self) -> _Watchdog:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join(timeout=3)


def _first_line(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _where(migration: Migration, exc: BaseException) -> str:
    """``line N`` of the file for an error with a position."""
    diag = getattr(exc, "diag", None)
    position = getattr(diag, "statement_position", None)
    if position and str(position).isdigit():
        return f" at line {migration.sql[: int(position)].count(chr(10)) + 1}"
    return ""


def _connect(dsn: str, ctx: RunContext, application_name: str = "prefect-init-migrate") -> Any:
    import psycopg

    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=max(2, round(min(10.0, ctx.remaining()))),
                               application_name=application_name)
    except psycopg.OperationalError as exc:
        from prefect_init.kinds.wait.targets.postgres import pg_reason

        raise RetryableError(f"{redact(dsn)}: {pg_reason(exc)}") from None


def _lock(conn: Any, key: str, ctx: RunContext, *, shared: bool = False) -> bool:
    """Take the migration lock, waiting (bounded by the deadline) if another replica holds it.

    Returns True if it had to wait. A shared lock is granted to every waiter at once when the migrating
    replica releases its exclusive one, so the waiters check the history in parallel, not one by one.
    """
    mode = "_shared" if shared else ""
    if conn.execute(f"SELECT pg_try_advisory_lock{mode}(hashtext(%s))", (key,)).fetchone()[0]:
        return False
    ctx.log.info("another replica is migrating; waiting for it")
    started = time.monotonic()
    conn.execute(f"SET lock_timeout = {max(1, int(ctx.remaining() * 1000))}")
    conn.execute(f"SELECT pg_advisory_lock{mode}(hashtext(%s))", (key,))
    conn.execute("SET lock_timeout = 0")
    ctx.log.info(f"got the migration lock after {time.monotonic() - started:.2f}s")
    return True


def _unlock(conn: Any, key: str, *, shared: bool = False) -> None:
    conn.execute(f"SELECT pg_advisory_unlock{'_shared' if shared else ''}(hashtext(%s))", (key,))


def _ensure_table(conn: Any, spec: MigrateSpec, table: Any) -> None:
    from psycopg import sql

    if spec.schema_:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(spec.schema_)))
    conn.execute(sql.SQL("""CREATE TABLE IF NOT EXISTS {} (
        installed_rank bigserial PRIMARY KEY,
        version text,
        description text NOT NULL,
        type text NOT NULL,
        script text NOT NULL,
        checksum text NOT NULL,
        applied_by text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(),
        duration_ms integer NOT NULL,
        success boolean NOT NULL)""").format(table))


def _applied(conn: Any, table: Any) -> list[Applied]:
    from psycopg import sql

    rows = conn.execute(sql.SQL("SELECT version, script, checksum FROM {} WHERE success "
                                "ORDER BY installed_rank").format(table)).fetchall()
    return [Applied(v, s, c) for v, s, c in rows]


def _record(conn: Any, table: Any, version: str | None, description: str, kind: str, script: str, checksum: str,
            duration_ms: int, applied_by: str | None = None, applied_at: Any = None) -> None:
    from psycopg import sql

    conn.execute(sql.SQL("INSERT INTO {} (version, description, type, script, checksum, applied_by, applied_at, "
                         "duration_ms, success) VALUES (%s, %s, %s, %s, %s, %s, coalesce(%s, now()), %s, true)"
                         ).format(table),
                 (version, description, kind, script, checksum, applied_by or socket.gethostname(), applied_at,
                  duration_ms))


def _baseline(conn: Any, table: Any, versioned: list[Migration], baseline: str, ctx: RunContext) -> None:
    """Record every file up to ``baseline`` as BASELINE (there already, not run), and the baseline version itself
    when no file has it, so a file added later below it is out of order, not pending."""
    upto = parse_version(baseline)
    below = [m for m in versioned if m.version is not None and m.version <= upto]
    with conn.transaction():
        for m in below:
            _record(conn, table, version_text(m.version or ()), m.description, "BASELINE", m.script, m.checksum, 0)
        if not any(m.version == upto for m in below):
            _record(conn, table, version_text(upto), "baseline", "BASELINE", BASELINE_MARKER, "", 0)
    ctx.log.info(f"baseline {baseline}: {len(below)} migrations recorded as BASELINE, not run "
                 f"({', '.join(m.script for m in below) or 'no file at or below it'})")


def _adopt_flyway(conn: Any, table: Any, spec: MigrateSpec, versioned: list[Migration], ctx: RunContext) -> None:
    """Record Flyway's successful versioned migrations in our history (ADOPTED); Flyway's table is only read."""
    rows = read_flyway(conn, spec.flyway_table, spec.flyway_schema)
    where = f"{spec.flyway_schema + '.' if spec.flyway_schema else ''}{spec.flyway_table}"
    if rows is None:
        raise StepFailed(f"adopt: flyway: there is no table {where} (set flyway_table: / flyway_schema:)")
    files = {m.version: m for m in versioned}
    adopted = adoptable(rows, where)
    with conn.transaction():
        for row in adopted:
            version = parse_version(row.version or "")
            file = files.get(version)
            kind = "BASELINE" if row.type == "BASELINE" else "ADOPTED"
            script = file.script if file else (BASELINE_MARKER if kind == "BASELINE" else row.script)
            _record(conn, table, version_text(version), row.description, kind, script,
                    file.checksum if file else "", row.execution_time, row.installed_by, row.installed_on)
    ctx.log.info(f"adopted {len(adopted)} migrations from Flyway's {where} "
                 f"(up to V{adopted[-1].version if adopted else '-'}); {where} was only read")


def _has_tables(conn: Any, spec: MigrateSpec) -> bool:
    """Does the database hold tables besides our history (a schema built before prefect-init)?"""
    found = conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN "
                         "('pg_catalog', 'information_schema') AND table_name <> %s", (spec.table,)).fetchone()
    return bool(found and found[0])


def _timeouts(conn: Any, lock_timeout: float, statement_timeout: float | None, *, local: bool) -> None:
    conn.execute("SELECT set_config('lock_timeout', %s, %s)", (pg_ms(lock_timeout), local))
    if statement_timeout is not None:
        conn.execute("SELECT set_config('statement_timeout', %s, %s)", (pg_ms(statement_timeout), local))


def _apply(conn: Any, table: Any, migration: Migration, ctx: RunContext, lock_timeout: float,
           statement_timeout: float | None) -> None:
    """One attempt: the file under ``lock_timeout`` (and ``statement_timeout``), with its history row."""
    version = version_text(migration.version) if migration.version is not None else None
    kind = "SQL" if migration.version is not None else "REPEATABLE"
    started = time.monotonic()
    if migration.transactional:
        with conn.transaction():
            _timeouts(conn, lock_timeout, statement_timeout, local=True)  # SET LOCAL: gone with the transaction
            conn.execute(migration.sql)
            _record(conn, table, version, migration.description, kind, migration.script, migration.checksum,
                    int((time.monotonic() - started) * 1000))
    else:
        _timeouts(conn, lock_timeout, statement_timeout, local=False)
        try:
            conn.execute(migration.sql)
        finally:
            conn.execute("RESET lock_timeout")
            conn.execute("RESET statement_timeout")
        _record(conn, table, version, migration.description, kind, migration.script, migration.checksum,
                int((time.monotonic() - started) * 1000))
    ctx.log.info(f"applied {migration.script} in {time.monotonic() - started:.2f}s")


def _apply_with_retries(conn: Any, table: Any, migration: Migration, spec: MigrateSpec, ctx: RunContext,
                        watch: LockWatch) -> None:
    """Attempts under a growing lock timeout (never above ``lock_timeout``), each rolled back on a lock timeout
    and retried after a jittered pause, until the step's deadline. The advisory lock stays held throughout."""
    import psycopg

    attempt = 0
    while True:
        attempt += 1
        timeout = min(lock_timeout_for(attempt, spec.lock_timeout), max(0.001, ctx.remaining()))
        watch.begin()
        try:
            if not migration.transactional and (dropped := drop_invalid_index(conn, migration.sql, timeout)):
                ctx.log.warning(f"{migration.script}: dropped the INVALID index {dropped} a failed concurrent "
                                "build left behind; building it again")
            _apply(conn, table, migration, ctx, timeout, spec.statement_timeout)
            if attempt > 1:
                ctx.log.info(f"{migration.script}: got its locks on attempt {attempt}")
            return
        except psycopg.errors.LockNotAvailable:
            seen = watch.end()
        finally:
            watch.end()
        what = seen.text() if seen else "a lock (its holder could not be looked up)"
        pause = pause_after(attempt)
        following = lock_timeout_for(attempt + 1, spec.lock_timeout)
        if ctx.remaining() <= pause + following + 0.2:  # no shortened (or unbounded) last attempt
            raise StepTimeout(f"{migration.script}: not applied: {attempt} attempts each waited at most their lock "
                              f"timeout and the step's deadline comes before the next; the last waited "
                              f"{timeout:.2f}s for {what} (rolled back; not recorded)")
        ctx.log.warning(f"{migration.script}: attempt {attempt}: waited {timeout:.2f}s (lock_timeout) for {what}; "
                        f"rolled back so the site's queries go on; attempt {attempt + 1} in {pause:.1f}s "
                        f"(lock_timeout {following:.2f}s)")
        if ctx.cancel.wait(pause):
            raise StepCancelled(f"{migration.script}: stopped by SIGTERM between lock attempts (not applied)")


def _pg_version(conn: Any) -> str | None:
    """The server's version as squawk's --pg-version takes it (``16.4``)."""
    number = getattr(getattr(conn, "info", None), "server_version", None)
    return f"{number // 10000}.{number % 10000}" if isinstance(number, int) and number >= 100000 else None


def _lint_gate(conn: Any, todo: list[Migration], spec: MigrateSpec, ctx: RunContext) -> None:
    """Lint the pending files before the first is applied; a blocking finding refuses them all (lint: block)."""
    try:
        findings = lint_.lint(todo, timeout=max(1.0, min(30.0, ctx.remaining())), pg_version=_pg_version(conn))
    except lint_.LintUnavailable as exc:
        if spec.lint == "block":
            raise
        ctx.log.warning(f"{exc} (lint: warn, so applying anyway)")
        return
    for finding in findings:
        where = f"{finding.path.name}:{finding.line}: {finding.rule}"
        if finding.allowed is not None:
            ctx.log.info(f"{where}: allowed on purpose: {finding.allowed}")
        elif not finding.blocking or spec.lint == "warn":
            ctx.log.warning(f"lint: {where}: {finding.message}")
    if spec.lint == "block" and any(f.blocking for f in findings):
        raise StepFailed(lint_.refusal(findings))


def _run_command(conn: Any, table: Any, spec: MigrateSpec, ctx: RunContext) -> str:
    from prefect_init.kinds.command import environment, run_process

    assert spec.command is not None and spec.version is not None
    script = shlex.join(spec.command)
    done = [a for a in _applied(conn, table) if a.version == spec.version and a.script == script]
    if done:
        ctx.log.info(f"{script}: already ran for version {spec.version}")
        return f"up to date (version {spec.version})"
    started = time.monotonic()
    env = environment(spec.env, ctx)
    options = f"-c lock_timeout={pg_ms(spec.lock_timeout)}"
    if spec.statement_timeout is not None:
        options += f" -c statement_timeout={pg_ms(spec.statement_timeout)}"
    env["PGOPTIONS"] = f"{options} {env.get('PGOPTIONS', '')}".strip()  # the user's own options come last: theirs win
    ctx.log.info(f"{script}: with PGOPTIONS {options} (a migration waits at most that long for a table's lock)")
    try:
        run_process(spec.command, ctx, cwd=ctx.resolve(spec.cwd) if spec.cwd else None, env=env)
    except RetryableError as exc:  # a failed migration tool needs a look, not a blind rerun
        raise StepFailed(str(exc)) from None
    _record(conn, table, spec.version, f"command for version {spec.version}", "COMMAND", script,
            hashlib.sha256(script.encode()).hexdigest(), int((time.monotonic() - started) * 1000))
    return f"ran the migration command for version {spec.version}"


def _pending(conn: Any, spec: MigrateSpec, table: Any, ctx: RunContext) -> list[Migration] | None:
    """What is left to apply (None: the history table does not exist yet); validates the history."""
    import psycopg

    versioned, repeatable = load_dir(ctx.resolve(spec.dir or ""))
    try:
        applied = _applied(conn, table)
    except psycopg.errors.UndefinedTable:
        return None
    return plan_migrations(versioned, repeatable, applied,
                           target=parse_version(spec.target) if spec.target else None,
                           out_of_order=spec.out_of_order, allow_changed=spec.allow_changed,
                           allow_missing=spec.allow_missing)


def _migrate(conn: Any, spec: MigrateSpec, ctx: RunContext) -> str:
    table, key = spec.identifier(), spec.lock_key()
    if spec.command is None and not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()[0]:
        # Another replica is migrating: wait with the other waiters on a shared lock, then check in parallel.
        _lock(conn, key, ctx, shared=True)
        todo = _pending(conn, spec, table, ctx)
        _unlock(conn, key, shared=True)
        if todo == []:
            ctx.log.info("up to date: another replica applied everything")
            return "up to date"
        _lock(conn, key, ctx)  # something is left (the other replica failed?): take over
    elif spec.command is not None:
        _lock(conn, key, ctx)
    _ensure_table(conn, spec, table)
    if spec.command is not None:
        return _run_command(conn, table, spec, ctx)
    fresh = not _applied(conn, table)  # our history holds no applied migration yet
    if fresh and (spec.baseline or spec.adopt):
        versioned, _ = load_dir(ctx.resolve(spec.dir or ""))
        if spec.adopt:
            _adopt_flyway(conn, table, spec, versioned, ctx)
        else:
            _baseline(conn, table, versioned, spec.baseline or "", ctx)
    elif spec.baseline or spec.adopt:
        ctx.log.info(f"{'baseline' if spec.baseline else 'adopt'}: ignored, the history already holds migrations")
    todo = _pending(conn, spec, table, ctx) or []
    if not todo:
        ctx.log.info("up to date: nothing to apply")
        return "up to date"
    if spec.lint != "off":
        _lint_gate(conn, todo, spec, ctx)
    watch = LockWatch(lambda: _connect(spec.database, ctx, "prefect-init-migrate-watch"), conn.info.backend_pid)
    try:
        _apply_all(conn, table, todo, spec, fresh, ctx, watch)
    finally:
        watch.close()
    return f"applied {len(todo)} migrations"


def _apply_all(conn: Any, table: Any, todo: list[Migration], spec: MigrateSpec, fresh: bool, ctx: RunContext,
               watch: LockWatch) -> None:
    import psycopg

    for index, migration in enumerate(todo):
        try:
            _apply_with_retries(conn, table, migration, spec, ctx, watch)
        except (StepTimeout, StepCancelled):
            raise
        except Exception as exc:
            if _is_connection_error(exc):
                raise
            if isinstance(exc, psycopg.errors.QueryCanceled) and (ctx.cancel.is_set() or ctx.remaining() <= 0):
                raise  # the watchdog's cancel: the step's deadline or SIGTERM
            whole = "rolled back whole" if migration.transactional else "NOT in a transaction: check what it did"
            hint = ""
            if fresh and index == 0 and not (spec.baseline or spec.adopt) and _has_tables(conn, spec):
                hint = " — this database has tables but no history: set baseline: or adopt: flyway"
            raise StepFailed(f"{migration.script} failed{_where(migration, exc)}: {_first_line(exc)} "
                             f"({whole}; not recorded){hint}") from None


def _last_rank(conn: Any, table: Any) -> int:
    import psycopg
    from psycopg import sql

    try:
        row = conn.execute(sql.SQL("SELECT coalesce(max(installed_rank), 0) FROM {}").format(table)).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def _record_outputs(conn: Any, spec: MigrateSpec, before: int, ctx: RunContext) -> None:
    """``version``: the highest applied version now; ``applied``: how many this run applied (not recorded as
    baseline or adopted)."""
    from psycopg import sql

    rows = conn.execute(sql.SQL("SELECT version, type, installed_rank FROM {} WHERE success").format(
        spec.identifier())).fetchall()
    versions = [v for v, _, _ in rows if v is not None]
    if spec.command is not None:
        ctx.output("version", spec.version)
    elif versions:
        ctx.output("version", version_text(max(parse_version(v) for v in versions)))
    ctx.output("applied", sum(1 for _, kind, rank in rows if rank > before and kind in ("SQL", "REPEATABLE",
                                                                                          "COMMAND")))


def _is_connection_error(exc: BaseException) -> bool:
    import psycopg

    return isinstance(exc, psycopg.OperationalError) and not isinstance(
        exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable)


def run(step: Step, ctx: RunContext) -> str:
    import psycopg

    spec = step.migrate
    dsn = spec.database
    conn = _connect(dsn, ctx)
    watchdog = _Watchdog(conn, ctx)
    try:
        with watchdog:
            before = _last_rank(conn, spec.identifier())
            summary = _migrate(conn, spec, ctx)
            _record_outputs(conn, spec, before, ctx)
    except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable):
        if watchdog.fired == "cancel" or ctx.cancel.is_set():
            raise StepCancelled("migration stopped by SIGTERM (the running transaction was rolled back)") from None
        raise StepTimeout("step deadline reached while migrating or waiting for the migration lock "
                          "(the running transaction was rolled back)") from None
    except psycopg.OperationalError as exc:
        raise RetryableError(f"{redact(dsn)}: connection lost: {_first_line(exc)}") from None
    finally:
        conn.close()  # ends the session: the advisory lock goes with it
    ctx.log.info(summary)
    return summary


__all__ = ["MigrateSpec", "Step", "run"]


def probe(step: Step, ctx: RunContext) -> Any:
    """Connect and read the history (a read-only session; nothing created): what ``run`` would apply or refuse."""
    import psycopg

    from prefect_init.runtime.probe import CHANGE, OK, PROBLEM, Finding

    spec = step.migrate
    conn = _connect(spec.database, ctx)
    try:
        conn.execute("SET default_transaction_read_only = on")
        table = spec.identifier()
        if spec.command is not None:
            try:
                done = [a for a in _applied(conn, table) if a.version == spec.version]
            except psycopg.errors.UndefinedTable:
                done = []
            if done:
                return Finding(OK, [f"the command already ran for version {spec.version}"])
            return Finding(CHANGE, [f"run {shlex.join(spec.command or [])} for version {spec.version}"])
        try:
            todo = _pending(conn, spec, table, ctx)
        except StepFailed as exc:
            return Finding(PROBLEM, str(exc).splitlines()[1:] or [str(exc)])
        if todo is None:
            versioned, repeatable = load_dir(ctx.resolve(spec.dir or ""))
            todo = [*versioned, *repeatable]
            if spec.baseline or spec.adopt:
                how = "baseline " + spec.baseline if spec.baseline else "adopt Flyway's history"
                return Finding(CHANGE, [f"no history table yet: create it and {how}"])
            details = [f"no history table yet: create it and apply {len(todo)} migrations"]
        elif not todo:
            return Finding(OK, ["up to date"])
        else:
            details = [f"apply {', '.join(m.script for m in todo)}"]
        details += _lock_report(conn, todo, spec)
        if spec.lint != "off":
            findings = lint_.lint(todo, timeout=max(1.0, min(30.0, ctx.remaining())), pg_version=_pg_version(conn))
            blocking = [f for f in findings if f.blocking]
            if blocking and spec.lint == "block":
                return Finding(PROBLEM, [*lint_.refusal(findings).splitlines(), *details[1:]])
            if findings:
                details.append(f"lint: {len(findings)} finding(s), none blocking (prefect-init check lists them)")
        return Finding(CHANGE, details)
    finally:
        conn.close()


LONGEST_TRANSACTION = """
SELECT pid, application_name, state, extract(epoch FROM now() - xact_start)::float8 FROM pg_stat_activity
WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND backend_type = 'client backend'
ORDER BY xact_start LIMIT 1
"""


def _lock_report(conn: Any, todo: list[Migration], spec: MigrateSpec) -> list[str]:
    """``check --online``: for each pending migration the tables it locks, the mode, each table's estimated rows
    and size; and the longest-running open transaction, which a migration's lock would queue behind."""
    import psycopg

    lines = []
    for migration in todo:
        parts = []
        for table, mode in statement_locks(migration.sql):
            try:
                row = conn.execute("SELECT c.reltuples::bigint, pg_size_pretty(pg_total_relation_size(c.oid)) "
                                   "FROM pg_class c WHERE c.oid = to_regclass(%s)", (table,)).fetchone()
            except psycopg.Error:
                row = None
            if row is None:
                parts.append(f"{mode} on {table} (not there yet)")
            else:
                rows = f"~{row[0]:,} rows" if row[0] >= 0 else "rows not estimated yet (never analyzed)"
                parts.append(f"{mode} on {table} ({rows}, {row[1]})")
        lines.append(f"{migration.script} locks " + ("; ".join(parts) if parts else "no table its text names"))
    longest = conn.execute(LONGEST_TRANSACTION).fetchone()
    if longest is None:
        lines.append("no other transaction is open")
    else:
        holder = Holder(int(longest[0]), longest[1] or "", longest[2] or "", longest[3])
        over = (f": longer than lock_timeout {spec.lock_timeout:g}s, so a migration locking a table it touched "
                "would wait and retry" if (longest[3] or 0) > spec.lock_timeout else "")
        lines.append(f"longest open transaction: {holder.text()}{over}")
    return lines


def lint(step: Step, ctx: RunContext, all_files: bool = False) -> tuple[list[lint_.LintFinding], str]:
    """``prefect-init check``: squawk's findings in the pending files (every file with ``all_files``, or when the
    database does not answer: pending needs the history), and a note saying which files were linted. Read only."""
    spec = step.migrate
    if isinstance(spec, dict):  # a stand-in (check --unset-ok): the step as written, some variables not set here
        directory = spec.get("dir")
        if not isinstance(directory, str) or "${" in directory:
            return [], "not linted: no dir, or one from a variable not set here"
        versioned, repeatable = load_dir(ctx.resolve(directory))
        files = [*versioned, *repeatable]
        return (lint_.lint(files, timeout=max(1.0, min(30.0, ctx.remaining()))),
                f"all {len(files)} files (the database is not set here, so pending is unknown)")
    if spec.dir is None:
        return [], "a migration command: no SQL files to lint"
    versioned, repeatable = load_dir(ctx.resolve(spec.dir))
    files = [*versioned, *repeatable]
    note = f"all {len(files)} files"
    version = None
    if "${" in spec.database and not all_files:  # check --unset-ok: a variable not set here
        note += " (the database is not set here, so pending is unknown)"
    elif not all_files:
        import psycopg

        try:
            conn = _connect(spec.database, ctx)
        except RetryableError as exc:
            note += f" (the database did not answer, so pending is unknown: {exc})"
        except psycopg.Error:
            note += " (the database URL is not one PostgreSQL reads, so pending is unknown)"
        else:
            try:
                version = _pg_version(conn)
                conn.execute("SET default_transaction_read_only = on")
                todo = _pending(conn, spec, spec.identifier(), ctx)
            except StepFailed as exc:
                todo, note = None, note + f" ({str(exc).splitlines()[0]})"
            finally:
                conn.close()
            if todo is not None:
                files, note = todo, f"{len(todo)} pending of {len(files)} files (--all for every file)"
            elif "(" not in note:
                note += " (no history table yet: every file is pending)"
    return lint_.lint(files, timeout=max(1.0, min(30.0, ctx.remaining())), pg_version=version), note
