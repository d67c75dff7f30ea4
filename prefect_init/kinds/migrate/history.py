"""SQL migration files and what to do with them, independent of any database connection.

- ``V<version>__<description>.sql``: versioned, applied once, in version order. Versions are numbers
  separated by ``.`` or ``_`` and compared as numbers (V2 < V10, V1.1 < V1.2 < V2).
- ``R__<description>.sql``: repeatable, (re)applied after the versioned ones whenever its checksum changes.
- A file whose first line is ``-- prefect-init: no-transaction`` runs outside a transaction.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field

from prefect_init.errors import StepFailed
from prefect_init.spec.model import StrictModel

VERSIONED = re.compile(r"^V(?P<version>\d+(?:[._]\d+)*)__(?P<description>.+)\.sql$")
REPEATABLE = re.compile(r"^R__(?P<description>.+)\.sql$")
NO_TRANSACTION = "-- prefect-init: no-transaction"

Version = tuple[int, ...]

_IDENT = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class HistoryTable(StrictModel):
    """Where the history lives: the ``table`` (and ``schema``) shared by the migrate step and the wait target."""

    table: str = Field(default="prefect_init_schema_history", pattern=_IDENT)
    schema_: str | None = Field(default=None, alias="schema", pattern=_IDENT)

    def identifier(self) -> Any:
        """The table as a psycopg SQL identifier, schema-qualified when a schema is given."""
        from psycopg import sql

        return sql.Identifier(self.schema_, self.table) if self.schema_ else sql.Identifier(self.table)

    def lock_key(self) -> str:
        """The text whose hash keys the advisory lock replicas serialize on."""
        return f"prefect-init:{self.schema_ or ''}.{self.table}"


def parse_version(text: str) -> Version:
    return tuple(int(part) for part in re.split(r"[._]", text))


def version_text(version: Version) -> str:
    return ".".join(map(str, version))


@dataclass(frozen=True)
class Migration:
    path: Path
    version: Version | None  # None for a repeatable
    description: str
    checksum: str
    sql: str
    transactional: bool

    @property
    def script(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        return f"V{version_text(self.version)}" if self.version is not None else f"R__{self.description}"


def load_dir(directory: Path) -> tuple[list[Migration], list[Migration]]:
    """(versioned in order, repeatables by name); a name that is neither, or a duplicate version, is final."""
    if not directory.is_dir():
        raise StepFailed(f"migrations dir {directory}: not a directory (is the volume mounted?)")
    versioned: dict[Version, Migration] = {}
    repeatable: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        raw = path.read_bytes()
        sql = raw.decode("utf-8")
        checksum = hashlib.sha256(raw).hexdigest()
        transactional = not sql.lstrip().startswith(NO_TRANSACTION)
        if match := VERSIONED.match(path.name):
            version = parse_version(match["version"])
            if version in versioned:
                raise StepFailed(f"{path.name}: version {version_text(version)} also in {versioned[version].script}")
            versioned[version] = Migration(path, version, match["description"].replace("_", " "), checksum, sql,
                                           transactional)
        elif match := REPEATABLE.match(path.name):
            repeatable.append(Migration(path, None, match["description"].replace("_", " "), checksum, sql,
                                        transactional))
        else:
            raise StepFailed(f"{path.name}: not a migration name (V<version>__<description>.sql or "
                             "R__<description>.sql)")
    return [versioned[v] for v in sorted(versioned)], repeatable


def _version(migration: Migration) -> Version:
    if migration.version is None:
        raise ValueError(f"{migration.script} is repeatable: it has no version")
    return migration.version


@dataclass(frozen=True)
class Applied:
    """A successful row of the history table."""

    version: str | None
    script: str
    checksum: str


def plan_migrations(versioned: list[Migration], repeatable: list[Migration], applied: list[Applied], *,
                    target: Version | None = None, out_of_order: bool = False, allow_changed: bool = False,
                    allow_missing: bool = False) -> list[Migration]:
    """What to apply, in order; every validation problem at once in one StepFailed."""
    by_version = {parse_version(a.version): a for a in applied if a.version is not None}
    files = {m.version: m for m in versioned}
    problems = []
    for version, row in sorted(by_version.items()):
        migration = files.get(version)
        if migration is None:
            if row.script.startswith("<< "):
                continue  # a baseline mark: no file stands behind it
            if not allow_missing:
                problems.append(f"V{version_text(version)} ({row.script}) was applied but its file is gone "
                                "(allow_missing: true to accept)")
        elif migration.checksum != row.checksum and not allow_changed:
            problems.append(f"V{version_text(version)} ({migration.script}) changed after it was applied "
                            "(checksum differs; write a new migration, or allow_changed: true)")
    newest = max(by_version, default=None)
    pending = [m for m in versioned if _version(m) not in by_version and (target is None or _version(m) <= target)]
    if newest is not None and not out_of_order:
        late = [m for m in pending if _version(m) < newest]
        if late:
            problems.append(f"{', '.join(m.script for m in late)}: older than the newest applied version "
                            f"V{version_text(newest)} (out_of_order: true to apply anyway)")
    if problems:
        raise StepFailed("migrations do not match the history:\n" + "\n".join(problems))
    latest_repeatable: dict[str, str] = {}
    for row in applied:
        if row.version is None:
            latest_repeatable[row.script] = row.checksum  # rows come in order: the last one wins
    stale = [m for m in repeatable if latest_repeatable.get(m.script) != m.checksum]
    return pending + (stale if target is None else [])
