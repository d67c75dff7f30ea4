"""Lock waits with a bound, then retries: how a migration takes its locks on a live database.

A migration that asks for ``ACCESS EXCLUSIVE`` on a table another transaction reads queues behind it, and every
reader that arrives meanwhile queues behind the migration: the site stops. So each attempt runs under a short
``lock_timeout``; on ``lock_not_available`` (SQLSTATE 55P03) its transaction is rolled back (the readers go on),
the step logs who held the lock, sleeps a growing, jittered pause and tries again, until its deadline. The
advisory lock of the history table stays held throughout, so exactly one replica migrates.

The schedule (GitLab's lock retries, in small): attempt 1 waits at most ``min(0.1 s, lock_timeout)`` for a lock,
each next attempt twice as long, never more than ``lock_timeout``; the pause after attempt N is
``0.5 s * 1.5^(N-1)`` (at most 10 s), times a random factor in [0.5, 1.5).
"""

from __future__ import annotations

import contextlib
import random
import re
import threading
from dataclasses import dataclass
from typing import Any

FIRST_LOCK_TIMEOUT = 0.1
FIRST_PAUSE, PAUSE_GROWTH, MAX_PAUSE = 0.5, 1.5, 10.0


def lock_timeout_for(attempt: int, ceiling: float) -> float:
    """The lock timeout of attempt ``attempt`` (from 1): growing from 100 ms, never above ``ceiling``."""
    return min(ceiling, FIRST_LOCK_TIMEOUT * 2 ** min(attempt - 1, 30))


def pause_after(attempt: int, rng: random.Random | None = None) -> float:
    """The pause after a failed attempt: growing, with jitter so racing pods do not retry in step."""
    base = min(MAX_PAUSE, FIRST_PAUSE * PAUSE_GROWTH ** min(attempt - 1, 30))
    return base * (0.5 + (rng or random).random())


def pg_ms(seconds: float) -> str:
    """A duration as PostgreSQL's setting text, whole milliseconds, at least 1 (0 would mean: no limit)."""
    return f"{max(1, round(seconds * 1000))}ms"


_PRINTABLE = re.compile(r"[^\x20-\x7e]")


def shown(text: object, limit: int = 64) -> str:
    """Another session's text (its application_name) fit for one log line: printable ASCII, bounded."""
    return _PRINTABLE.sub("?", str(text or ""))[:limit]


@dataclass(frozen=True)
class Holder:
    pid: int
    application_name: str
    state: str
    age: float | None  # seconds its transaction has been open

    def text(self) -> str:
        state = shown(self.state) or "state not visible to this role (pg_read_all_stats shows it)"
        age = f", transaction open {self.age:.1f}s" if self.age is not None else ""
        return f"pid {self.pid} (application_name '{shown(self.application_name)}', {state}{age})"


@dataclass(frozen=True)
class Wait:
    """What a migration's connection waited for, seen from a second connection while it waited."""

    relation: str | None
    mode: str
    holders: tuple[Holder, ...]

    def text(self) -> str:
        mode = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", self.mode.removesuffix("Lock")).upper()
        what = f"{mode} lock on {shown(self.relation, 200)}" if self.relation else f"{mode} lock"
        held = "; ".join(h.text() for h in self.holders) or "a session that had gone by the time it was looked up"
        return f"{what}, held by {held}"


WAIT_QUERY = """
SELECT l.relation::regclass::text, l.mode, b.pid, b.application_name, b.state,
       extract(epoch FROM now() - b.xact_start)::float8
FROM pg_locks l
LEFT JOIN LATERAL unnest(pg_blocking_pids(l.pid)) AS blocker(pid) ON true
LEFT JOIN pg_stat_activity b ON b.pid = blocker.pid
WHERE l.pid = %s AND NOT l.granted
"""


class LockWatch:
    """A second connection that looks, while an attempt runs, at what the migrating session waits for and who
    holds it (``pg_locks``, ``pg_blocking_pids``, ``pg_stat_activity``). It only reads; if it cannot connect, the
    waits are logged without the holder."""

    INTERVAL = 0.05
    """Every 50 ms one cheap look (is it waiting for a lock?); pg_locks and pg_blocking_pids only when it is."""

    def __init__(self, connect: Any, pid: int) -> None:
        self.pid = pid
        self.conn: Any = None
        with contextlib.suppress(Exception):
            self.conn = connect()
        self.active = threading.Event()
        self.stop = threading.Event()
        self.seen: Wait | None = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._watch, daemon=True, name="migrate-lock-watch")
        if self.conn is not None:
            self.thread.start()

    def _sample(self) -> Wait | None:
        waiting = self.conn.execute("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s",
                                    (self.pid,)).fetchone()
        if not waiting or not waiting[0]:
            return None
        rows = self.conn.execute(WAIT_QUERY, (self.pid,)).fetchall()
        if not rows:
            return None
        relation, mode = rows[0][0], rows[0][1]
        holders = tuple(Holder(int(r[2]), r[3] or "", r[4] or "", r[5]) for r in rows if r[2] is not None)
        return Wait(relation, str(mode), holders)

    def _watch(self) -> None:
        while not self.stop.is_set():
            if not self.active.wait(0.2):
                continue
            try:
                sample = self._sample()
            except Exception:
                return  # the watcher's own connection failed: the waits are logged without the holder
            if sample is not None:
                with self.lock:
                    if self.active.is_set():
                        self.seen = sample
            self.stop.wait(self.INTERVAL)

    def begin(self) -> None:
        with self.lock:
            self.seen = None
        self.active.set()

    def end(self) -> Wait | None:
        self.active.clear()
        with self.lock:
            return self.seen

    def close(self) -> None:
        self.stop.set()
        self.active.set()
        if self.thread.is_alive():
            self.thread.join(timeout=3)
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()


_INDEX = re.compile(r"CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"
                    r"(?:(?P<schema>\"[^\"]+\"|\w+)\s*\.\s*)?(?P<name>\"[^\"]+\"|\w+)", re.IGNORECASE)


def concurrent_index_name(sql: str) -> tuple[str | None, str] | None:
    """(schema, name) of the index a ``CREATE INDEX CONCURRENTLY`` file builds, as PostgreSQL folds it."""
    match = _INDEX.search(sql)
    if not match or match["name"].upper() == "ON":
        return None

    def fold(part: str | None) -> str | None:
        if part is None:
            return None
        return part[1:-1].replace('""', '"') if part.startswith('"') else part.lower()

    return fold(match["schema"]), fold(match["name"]) or ""


def drop_invalid_index(conn: Any, sql_text: str, lock_timeout: float) -> str | None:
    """A concurrent build that failed leaves an INVALID index behind: drop it (concurrently) so the file can
    build it again. Returns the index dropped, if any."""
    from psycopg import sql

    found = concurrent_index_name(sql_text)
    if found is None:
        return None
    schema, name = found
    row = conn.execute("SELECT n.nspname FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = %s AND NOT i.indisvalid "
                       "AND (%s::text IS NULL AND pg_table_is_visible(c.oid) OR n.nspname = %s)",
                       (name, schema, schema)).fetchone()
    if row is None:
        return None
    conn.execute("SELECT set_config('lock_timeout', %s, false)", (pg_ms(lock_timeout),))
    try:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(row[0], name)))
    finally:
        conn.execute("SELECT set_config('lock_timeout', '0', false)")
    return f"{row[0]}.{name}"


_NAME = r'(?:(?:"[^"]+"|\w+)\s*\.\s*)?(?:"[^"]+"|\w+)'
_IF = r"(?:IF\s+(?:NOT\s+)?EXISTS\s+)?"
_STATEMENTS: list[tuple[re.Pattern[str], str | None]] = [
    (re.compile(rf"^ALTER\s+TABLE\s+{_IF}(?:ONLY\s+)?(?P<t>{_NAME})\s+VALIDATE\s+CONSTRAINT\b", re.I | re.S),
     "SHARE UPDATE EXCLUSIVE"),
    (re.compile(rf"^ALTER\s+TABLE\s+{_IF}(?:ONLY\s+)?(?P<t>{_NAME})\s+ADD\s+(?:CONSTRAINT\s+\S+\s+)?FOREIGN\s+KEY\b",
                re.I | re.S), "SHARE ROW EXCLUSIVE"),
    (re.compile(rf"^ALTER\s+TABLE\s+{_IF}(?:ONLY\s+)?(?P<t>{_NAME})", re.I | re.S), "ACCESS EXCLUSIVE"),
    (re.compile(rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:{_IF}{_NAME}\s+)?ON\s+(?:ONLY\s+)?(?P<t>{_NAME})",
                re.I | re.S), "SHARE UPDATE EXCLUSIVE"),
    (re.compile(rf"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?:{_IF}(?!ON\b){_NAME}\s+)?ON\s+(?:ONLY\s+)?(?P<t>{_NAME})",
                re.I | re.S), "SHARE"),
    (re.compile(rf"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?TRIGGER\s.*?\sON\s+(?P<t>{_NAME})", re.I | re.S),
     "SHARE ROW EXCLUSIVE"),
    (re.compile(rf"^DROP\s+INDEX\s+CONCURRENTLY\s+{_IF}(?P<t>{_NAME})", re.I | re.S),
     "SHARE UPDATE EXCLUSIVE (on the index's table)"),
    (re.compile(rf"^DROP\s+INDEX\s+{_IF}(?P<t>{_NAME})", re.I | re.S), "ACCESS EXCLUSIVE (on the index's table)"),
    (re.compile(rf"^(?:DROP\s+TABLE|TRUNCATE(?:\s+TABLE)?)\s+{_IF}(?:ONLY\s+)?(?P<t>{_NAME})", re.I | re.S),
     "ACCESS EXCLUSIVE"),
    (re.compile(rf"^REFRESH\s+MATERIALIZED\s+VIEW\s+CONCURRENTLY\s+(?P<t>{_NAME})", re.I | re.S), "EXCLUSIVE"),
    (re.compile(rf"^REFRESH\s+MATERIALIZED\s+VIEW\s+(?P<t>{_NAME})", re.I | re.S), "ACCESS EXCLUSIVE"),
    (re.compile(rf"^(?:INSERT\s+INTO|UPDATE(?:\s+ONLY)?|DELETE\s+FROM(?:\s+ONLY)?)\s+(?P<t>{_NAME})", re.I | re.S),
     "ROW EXCLUSIVE"),
    (re.compile(rf"^(?:VACUUM|ANALYZE)\b(?:\s*\([^)]*\))?(?:\s+\w+)*?\s+(?P<t>{_NAME})\s*$", re.I | re.S),
     "SHARE UPDATE EXCLUSIVE"),
    (re.compile(rf"^LOCK\s+(?:TABLE\s+)?(?:ONLY\s+)?(?P<t>{_NAME})(?:\s+IN\s+(?P<m>[A-Z ]+?)\s+MODE)?", re.I | re.S),
     None),
]
_REFERENCES = re.compile(rf"\bREFERENCES\s+(?P<t>{_NAME})", re.I)


def _blank_comments(sql_text: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", lambda m: " " * len(m.group(0)), sql_text, flags=re.S)


def statement_locks(sql_text: str) -> list[tuple[str, str]]:
    """The tables a migration's statements lock and in which mode, as PostgreSQL documents each command
    (read from the text: a table named through a function or dynamic SQL is not seen). In file order."""
    found: list[tuple[str, str]] = []
    for statement in _blank_comments(sql_text).split(";"):
        text = statement.strip()
        for pattern, mode in _STATEMENTS:
            match = pattern.match(text)
            if match:
                found.append((match["t"], mode or (match["m"] or "ACCESS EXCLUSIVE").upper()))
                break
        if re.match(r"^(?:CREATE\s+TABLE|ALTER\s+TABLE)\b", text, re.I):
            found += [(m["t"], "SHARE ROW EXCLUSIVE (referenced)") for m in _REFERENCES.finditer(text)]
    unique: list[tuple[str, str]] = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique


__all__ = ["Holder", "LockWatch", "Wait", "concurrent_index_name", "drop_invalid_index", "lock_timeout_for",
           "pause_after", "pg_ms", "shown", "statement_locks"]
