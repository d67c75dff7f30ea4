"""``prefect-init migrations``: every migration of a step with its state, read-only (``flyway info``).

States: ``applied``, ``pending``, ``baseline`` (recorded, not run: the database had it), ``adopted`` (applied by
Flyway), ``changed`` (the file differs from what was applied), ``missing`` (applied, the file is gone), ``failed``.
Nothing is created: a database without the history table shows every file pending.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from prefect_init.kinds.migrate.history import Migration, parse_version, version_text

PROBLEMS = ("changed", "missing", "failed")
BASELINE_MARKER = "<< baseline >>"


@dataclass
class Entry:
    state: str
    version: str
    description: str
    script: str
    applied_at: str = ""
    applied_by: str = ""
    duration_ms: int | None = None


def history_rows(conn: Any, identifier: Any) -> list[dict[str, Any]] | None:
    """Every row of the history table, or None when it does not exist (nothing is created)."""
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row

    try:
        with conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(sql.SQL("SELECT version, description, type, script, checksum, applied_by, applied_at, "
                                   "duration_ms, success FROM {} ORDER BY installed_rank").format(identifier))
            return list(cursor.fetchall())
    except psycopg.errors.UndefinedTable:
        return None


def entries(versioned: list[Migration], repeatable: list[Migration], rows: list[dict[str, Any]]) -> list[Entry]:
    files = {version_text(m.version): m for m in versioned if m.version is not None}
    out: list[Entry] = []
    seen: set[str] = set()
    for row in rows:
        when = row["applied_at"].strftime("%Y-%m-%d %H:%M:%SZ") if row["applied_at"] else ""
        common = {"description": row["description"], "script": row["script"], "applied_at": when,
                  "applied_by": row["applied_by"], "duration_ms": row["duration_ms"]}
        if row["version"] is None:
            continue  # repeatables: by their latest checksum, below
        version = version_text(parse_version(row["version"]))
        seen.add(version)
        file = files.get(version)
        if not row["success"]:
            state = "failed"
        elif row["script"] == BASELINE_MARKER:
            state = "baseline"
        elif file is None and row["type"] != "BASELINE":
            state = "missing"
        elif file is not None and row["checksum"] and file.checksum != row["checksum"]:
            state = "changed"
        else:
            state = {"BASELINE": "baseline", "ADOPTED": "adopted"}.get(row["type"], "applied")
        out.append(Entry(state, version, **common))
    for version, file in files.items():
        if version not in seen:
            out.append(Entry("pending", version, file.description, file.script))
    latest = {r["script"]: r for r in rows if r["version"] is None and r["success"]}
    for file in repeatable:
        last = latest.get(file.script)
        if last is not None and last["checksum"] == file.checksum:
            out.append(Entry("applied", "", file.description, file.script,
                             last["applied_at"].strftime("%Y-%m-%d %H:%M:%SZ"), last["applied_by"],
                             last["duration_ms"]))
        else:
            out.append(Entry("pending", "", file.description, file.script))
    out.sort(key=lambda e: (e.version == "", parse_version(e.version) if e.version else (), e.script))
    return out


def as_table(items: list[Entry]) -> str:
    header = ("STATE", "VERSION", "DESCRIPTION", "SCRIPT", "APPLIED AT", "APPLIED BY", "DURATION")
    lines = [header] + [(e.state, e.version or "R", e.description, e.script, e.applied_at or "-",
                         e.applied_by or "-", f"{e.duration_ms} ms" if e.duration_ms is not None else "-")
                        for e in items]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def as_json(items: list[Entry]) -> str:
    return json.dumps([asdict(e) for e in items], indent=2)
