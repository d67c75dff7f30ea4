"""Lock waits with a bound, then retries, on real PostgreSQL: while a transaction reads ``accounts``, the step's
``ALTER TABLE accounts`` waits at most its lock timeout each attempt, so the site's readers never queue behind it
for longer; it is rolled back, retried, and applied exactly once after the reader ends."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from prefect_init.kinds.migrate.locks import Holder, Wait, concurrent_index_name, lock_timeout_for, pause_after
from tests.helpers import CLI, clean_env, run_cli, run_cli_reacting
from tests.kinds.migrate.test_step import HISTORY, _error, _q, _spec, _write
from tests.pg import PASSWORD

LOCK_TIMEOUT = 1.0
ALTER = {"V1__nickname.sql": "ALTER TABLE accounts ADD COLUMN nickname text;"}
SAFETY = 25.0
"""A bound, not the event: if the release event never comes (today's unbounded wait), the blocker is let go
after this long so the test fails on its measurements instead of hanging."""


def _accounts(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE accounts (id bigint PRIMARY KEY, name text)")
        conn.execute("INSERT INTO accounts SELECT g, 'n' || g FROM generate_series(1, 1000) g")


class Blocker:
    """A second session holding ACCESS SHARE on accounts: BEGIN; SELECT ...; until released."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, application_name="nightly-report")
        self.conn.execute("SELECT count(*) FROM accounts").fetchone()  # psycopg opened the transaction: held
        self.why: str | None = None
        self.lock = threading.Lock()
        self.safety = threading.Timer(SAFETY, self.release, args=("safety bound",))
        self.safety.start()

    def release(self, why: str = "event") -> None:
        with self.lock:
            if self.why is None:
                self.why = why
                self.conn.rollback()

    def close(self) -> None:
        self.safety.cancel()
        self.release("end of test")
        self.conn.close()


@contextmanager
def readers(dsn: str, count: int = 2) -> Iterator[list[float]]:
    """``count`` sessions each querying accounts every 100 ms; yields every query's duration (seconds)."""
    durations: list[float] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(dsn, autocommit=True, application_name="site-reader") as conn:
            conn.execute("SET statement_timeout = '60s'")  # a bound: a reader stuck for ever fails, not hangs
            while not stop.is_set():
                started = time.monotonic()
                conn.execute("SELECT count(*) FROM accounts").fetchone()
                durations.append(time.monotonic() - started)
                stop.wait(0.1)

    threads = [threading.Thread(target=read, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield durations
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=70)


def _lock_spec(tmp_path: Path, dsn: str, files: dict[str, str], **step: Any) -> Path:
    return _spec(tmp_path, {"database": dsn, "dir": str(_write(tmp_path / "m", files)),
                            "lock_timeout": f"{LOCK_TIMEOUT:g}s"}, **{"timeout": "90s", **step})


def test_readers_never_queue_longer_than_the_lock_timeout_and_it_applies_once(tmp_path: Path, pg: Any) -> None:
    _accounts(pg.dsn)
    spec = _lock_spec(tmp_path, pg.dsn, ALTER)
    blocker = Blocker(pg.dsn)
    try:
        with readers(pg.dsn) as durations:
            # the event: the fifth wait, whose lock timeout has grown to the ceiling (0.1, 0.2, 0.4, 0.8, 1 s)
            result = run_cli_reacting("run", str(spec), on={"attempt 5: waited": blocker.release}, timeout=120)
    finally:
        blocker.close()
    assert blocker.why == "event"
    assert result.code == 0, result.stderr[-3000:]
    assert len(durations) >= 20  # positive control: the readers did read all along
    assert max(durations) < LOCK_TIMEOUT + 1, sorted(durations)[-5:]
    assert _q(pg.dsn, f"SELECT script FROM {HISTORY}") == [("V1__nickname.sql",)]
    assert _q(pg.dsn, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'accounts' "
                      "AND column_name = 'nickname'") == [(1,)]
    log = result.stderr
    assert "V1__nickname.sql: attempt 1: waited 0.10s (lock_timeout) for ACCESS EXCLUSIVE lock on accounts" in log
    assert "application_name 'nightly-report', idle in transaction, transaction open" in log
    assert "attempt 5: waited 1.00s" in log
    assert "got its locks on attempt" in log


def test_twenty_replicas_racing_behind_a_reader_apply_once(tmp_path: Path, pg: Any) -> None:
    _accounts(pg.dsn)
    files = {**ALTER, "V2__seed.sql": "INSERT INTO accounts (id, name) VALUES (0, 'once');"}
    spec = _lock_spec(tmp_path, pg.dsn, files, timeout="150s")
    blocker = Blocker(pg.dsn)
    seen = threading.Event()
    outputs: list[list[str]] = [[] for _ in range(20)]

    def follow(proc: subprocess.Popen[str], lines: list[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "attempt 3: waited" in line:
                seen.set()
                blocker.release()

    try:
        with readers(pg.dsn) as durations:
            procs = [subprocess.Popen([*CLI, "run", str(spec), "--status-file", str(tmp_path / f"s{i}.json")],
                                      env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for i in range(20)]
            followers = [threading.Thread(target=follow, args=(p, outputs[i]), daemon=True)
                         for i, p in enumerate(procs)]
            for follower in followers:
                follower.start()
            codes = []
            for proc in procs:
                try:
                    codes.append(proc.wait(timeout=180))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    codes.append(proc.wait())
            for follower in followers:
                follower.join(timeout=10)
    finally:
        blocker.close()
    texts = ["".join(lines) for lines in outputs]
    assert seen.is_set() and blocker.why == "event"
    assert codes == [0] * 20, [t[-400:] for t in texts if "applied" not in t][:2]
    assert max(durations) < LOCK_TIMEOUT + 1, sorted(durations)[-5:]
    assert _q(pg.dsn, "SELECT count(*) FROM accounts WHERE name = 'once'") == [(1,)]
    assert _q(pg.dsn, f"SELECT script, count(*) FROM {HISTORY} GROUP BY script ORDER BY script") == [
        ("V1__nickname.sql", 1), ("V2__seed.sql", 1)]
    assert sum("applied 2 migrations" in t for t in texts) == 1
    assert sum("nightly-report" in t for t in texts) == 1  # only the migrating replica waited on the table
    assert _q(pg.dsn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]


def test_the_deadline_ends_the_retries_without_an_unbounded_last_attempt(tmp_path: Path, pg: Any) -> None:
    _accounts(pg.dsn)
    spec = _lock_spec(tmp_path, pg.dsn, ALTER, timeout="4s")
    blocker = Blocker(pg.dsn)
    try:
        with readers(pg.dsn) as durations:
            started = time.monotonic()
            result = run_cli("run", str(spec), timeout=60)
            took = time.monotonic() - started
    finally:
        blocker.close()
    assert result.code == 1
    assert took < 15
    assert max(durations) < LOCK_TIMEOUT + 1, sorted(durations)[-5:]
    error = _error(spec)
    assert error.startswith("V1__nickname.sql: not applied:"), error
    assert "nightly-report" in error and "rolled back; not recorded" in error
    assert _q(pg.dsn, f"SELECT count(*) FROM {HISTORY}") == [(0,)]


def test_a_migration_command_gets_the_lock_timeout_in_pgoptions(tmp_path: Path, pg: Any) -> None:
    seen = tmp_path / "pgoptions"
    command = ["sh", "-c", f'printf %s "$PGOPTIONS" > {seen}']
    spec = _spec(tmp_path, {"database": pg.dsn, "command": command, "version": "v1", "lock_timeout": "1500ms",
                            "statement_timeout": "5m", "env": {"PGOPTIONS": "-c work_mem=64MB"}})
    result = run_cli("run", str(spec))
    assert result.code == 0, result.stderr
    assert seen.read_text() == "-c lock_timeout=1500ms -c statement_timeout=300000ms -c work_mem=64MB"


def test_schedule_grows_to_the_ceiling_with_jittered_pauses() -> None:
    assert [lock_timeout_for(n, 1.0) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert lock_timeout_for(1, 0.05) == 0.05
    pauses = [pause_after(3) for _ in range(200)]
    assert 0.5 * 1.125 <= min(pauses) < max(pauses) < 1.5 * 1.125
    assert max(pause_after(n) for n in range(1, 40)) < 15


def test_concurrent_index_name_as_postgres_folds_it() -> None:
    assert concurrent_index_name("-- x\nCREATE INDEX CONCURRENTLY Acc_Name ON accounts (name);") == (None, "acc_name")
    assert concurrent_index_name('create unique index concurrently if not exists s."Mixed" on t (a)') == ("s", "Mixed")
    assert concurrent_index_name("CREATE INDEX CONCURRENTLY ON t (a)") is None
    assert concurrent_index_name("CREATE INDEX i ON t (a)") is None


def test_check_online_names_each_pending_migrations_locks_sizes_and_the_longest_transaction(tmp_path: Path,
                                                                                            pg: Any) -> None:
    _accounts(pg.dsn)
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("ANALYZE accounts")
    files = {**ALTER, "V2__index.sql": "-- prefect-init: no-transaction\n"
                                      "CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_name ON accounts (name);",
             "V3__audit.sql": "CREATE TABLE audit (id bigint, account bigint REFERENCES accounts);\n"
                              "INSERT INTO audit VALUES (1, 1);"}
    spec = _lock_spec(tmp_path, pg.dsn, files)
    blocker = Blocker(pg.dsn)
    try:
        blocker.conn.execute("SELECT pg_sleep(1.1)")  # its transaction is older than the lock timeout
        result = run_cli("check", str(spec), "--online")
    finally:
        blocker.close()
    assert result.code == 0, result.output
    line = result.stdout
    assert "no history table yet: create it and apply 3 migrations" in line
    assert "V1__nickname.sql locks ACCESS EXCLUSIVE on accounts (~1,000 rows, " in line
    assert "V2__index.sql locks SHARE UPDATE EXCLUSIVE on accounts (~1,000 rows, " in line
    assert ("V3__audit.sql locks SHARE ROW EXCLUSIVE (referenced) on accounts (~1,000 rows, " in line
            and "ROW EXCLUSIVE on audit (not there yet)" in line)
    assert "longest open transaction: pid " in line
    assert "(application_name 'nightly-report', idle in transaction, transaction open " in line
    assert "longer than lock_timeout 1s" in line
    assert _q(pg.dsn, "SELECT to_regclass('prefect_init_schema_history') IS NULL") == [(True,)]  # read only


def test_a_holders_text_cannot_forge_a_log_line() -> None:
    """Another session's application_name and a table's name reach the log: printable ASCII only, bounded."""
    wait = Wait('"x\nINFO  [migrate] applied 9 migrations"', "AccessExclusiveLock",
                (Holder(7, "report\r\nINFO  [migrate] up to date" + "a" * 500, "idle in transaction", 2.5),))
    text = wait.text()
    assert "\n" not in text and "\r" not in text
    assert text.startswith("ACCESS EXCLUSIVE lock on \"x?INFO  [migrate] applied 9 migrations\", held by pid 7 "
                           "(application_name 'report??INFO  [migrate] up to date")
    assert "a" * 100 not in text and text.endswith(", idle in transaction, transaction open 2.5s)")


def test_statement_timeout_bounds_a_statement_and_is_not_retried(tmp_path: Path, pg: Any) -> None:
    spec = _spec(tmp_path, {"database": pg.dsn, "statement_timeout": "1s",
                            "dir": str(_write(tmp_path / "m", {"V1__slow.sql": "CREATE TABLE slow (id bigint);\n"
                                                                                "SELECT pg_sleep(5);"}))})
    started = time.monotonic()
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert time.monotonic() - started < 4.5
    assert _error(spec).startswith("V1__slow.sql failed: canceling statement due to statement timeout "
                                   "(rolled back whole; not recorded)"), _error(spec)
    assert "attempt 2" not in result.stderr
    assert _q(pg.dsn, "SELECT to_regclass('slow') IS NULL") == [(True,)]


def test_a_migrating_role_without_pg_read_all_stats_still_names_the_holder(tmp_path: Path, pg: Any) -> None:
    _accounts(pg.dsn)
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("CREATE ROLE app LOGIN PASSWORD 'app-pw-5150'")
        conn.execute("ALTER TABLE accounts OWNER TO app")
        conn.execute("GRANT ALL ON SCHEMA public TO app")
    dsn = pg.dsn.replace(f"postgres:{PASSWORD}@", "app:app-pw-5150@")
    spec = _lock_spec(tmp_path, dsn, ALTER)
    blocker = Blocker(pg.dsn)  # another role's session: its state and query are hidden from app
    try:
        result = run_cli_reacting("run", str(spec), on={"attempt 2: waited": blocker.release}, timeout=120)
    finally:
        blocker.close()
    assert blocker.why == "event"
    assert result.code == 0, result.stderr[-2000:]
    assert ("held by pid " in result.stderr and "(application_name 'nightly-report', state not visible to this role"
            in result.stderr)
    assert _q(pg.dsn, f"SELECT script FROM {HISTORY}") == [("V1__nickname.sql",)]


def test_a_wait_later_in_a_file_names_its_holder_too(tmp_path: Path, pg: Any) -> None:
    _accounts(pg.dsn)
    spec = _lock_spec(tmp_path, pg.dsn, {"V1__late.sql": "SELECT pg_sleep(0.6);\n"
                                                        "ALTER TABLE accounts ADD COLUMN late text;"})
    blocker = Blocker(pg.dsn)
    try:
        result = run_cli_reacting("run", str(spec), on={"attempt 2: waited": blocker.release}, timeout=120)
    finally:
        blocker.close()
    assert blocker.why == "event"
    assert result.code == 0, result.stderr[-2000:]
    first = next(line for line in result.stderr.splitlines() if "attempt 1: waited" in line)
    assert "ACCESS EXCLUSIVE lock on accounts, held by pid " in first and "'nightly-report'" in first
    assert _q(pg.dsn, f"SELECT script FROM {HISTORY}") == [("V1__late.sql",)]
