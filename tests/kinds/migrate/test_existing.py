"""Migrations on a database that already exists: baseline, adopting Flyway's history, the hint on a first run
that fails, and `prefect-init migrations` (real PostgreSQL)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers import CLI, clean_env, run_cli
from tests.kinds.migrate.test_step import HISTORY, _error, _q, _spec, _write

USERS = {"V1__users.sql": "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);",
         "V2__posts.sql": "CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users);"}

# flyway_schema_history as Flyway 10 creates it on PostgreSQL (its documented columns and types)
FLYWAY_TABLE = """
CREATE TABLE flyway_schema_history (
    installed_rank INT NOT NULL,
    version VARCHAR(50),
    description VARCHAR(200) NOT NULL,
    type VARCHAR(20) NOT NULL,
    script VARCHAR(1000) NOT NULL,
    checksum INTEGER,
    installed_by VARCHAR(100) NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT now(),
    execution_time INTEGER NOT NULL,
    success BOOLEAN NOT NULL,
    CONSTRAINT flyway_schema_history_pk PRIMARY KEY (installed_rank));
CREATE INDEX flyway_schema_history_s_idx ON flyway_schema_history (success);
"""


def _by_hand(dsn: str) -> None:
    _q_exec(dsn, "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL); "
                 "INSERT INTO users (name) VALUES ('made-by-hand');")


def _q_exec(dsn: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql)


def test_a_first_run_on_tables_without_history_says_what_to_do(tmp_path: Path, pg: Any) -> None:
    _by_hand(pg.dsn)
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(_write(tmp_path / "m", USERS))})
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert _error(spec) == ('V1__users.sql failed: relation "users" already exists (rolled back whole; not '
                            "recorded) — this database has tables but no history: set baseline: or adopt: flyway")


def test_baseline_records_what_is_there_and_applies_the_rest(tmp_path: Path, pg: Any) -> None:
    _by_hand(pg.dsn)
    directory = _write(tmp_path / "m", USERS)
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory), "baseline": "1"})
    result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert _q(pg.dsn, f"SELECT version, type, script FROM {HISTORY} ORDER BY installed_rank") == [
        ("1", "BASELINE", "V1__users.sql"), ("2", "SQL", "V2__posts.sql")]
    assert _q(pg.dsn, "SELECT name FROM users") == [("made-by-hand",)]  # V1 never ran
    assert _q(pg.dsn, "SELECT to_regclass('posts') IS NOT NULL") == [(True,)]
    again = run_cli("run", str(spec))
    assert again.code == 0 and "up to date" in again.stderr and "baseline: ignored" in again.stderr
    assert len(_q(pg.dsn, f"SELECT 1 FROM {HISTORY}")) == 2


def test_five_racing_replicas_baseline_once(tmp_path: Path, pg: Any) -> None:
    _by_hand(pg.dsn)
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(_write(tmp_path / "m", USERS)), "baseline": "1"})
    procs = [subprocess.Popen([*CLI, "run", str(spec), "--status-file", str(tmp_path / f"s{i}.json")],
                              env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(5)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, [o[1][-500:] for o in outputs]
    assert _q(pg.dsn, f"SELECT version, type FROM {HISTORY} ORDER BY installed_rank") == [
        ("1", "BASELINE"), ("2", "SQL")]
    assert sum("recorded as BASELINE" in o[1] for o in outputs) == 1


def test_a_baseline_above_every_file_leaves_a_mark(tmp_path: Path, pg: Any) -> None:
    """baseline 5 with files V1, V2: both recorded, and V5 itself, so a V3 added later is out of order."""
    _by_hand(pg.dsn)
    directory = _write(tmp_path / "m", USERS)
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory), "baseline": "5"})
    assert run_cli("run", str(spec)).code == 0
    assert _q(pg.dsn, f"SELECT version, script FROM {HISTORY} ORDER BY installed_rank") == [
        ("1", "V1__users.sql"), ("2", "V2__posts.sql"), ("5", "<< baseline >>")]
    _write(directory, {"V3__late.sql": "CREATE TABLE late (id int);"})
    assert run_cli("run", str(spec)).code == 1
    assert "V3__late.sql: older than the newest applied version V5" in _error(spec)


def _flyway(dsn: str, v3_success: bool) -> None:
    _q_exec(dsn, FLYWAY_TABLE + """
        CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);
        CREATE TABLE posts (id serial PRIMARY KEY);
        CREATE TABLE tags (id serial PRIMARY KEY);""")
    rows = [(1, "1", "users", "V1__users.sql", True), (2, "2", "posts", "V2__posts.sql", True),
            (3, "3", "tags", "V3__tags.sql", v3_success), (4, None, "views", "R__views.sql", True)]
    for rank, version, description, script, success in rows:
        _q_exec(dsn, "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
                     "checksum, installed_by, installed_on, execution_time, success) VALUES "
                     f"({rank}, {'NULL' if version is None else repr(version)}, '{description}', 'SQL', '{script}', "
                     f"{-123456 * rank}, 'flyway-ci', '2025-03-0{rank} 10:00:00', {10 * rank}, {success})")


FLYWAY_FILES = {**USERS, "V3__tags.sql": "CREATE TABLE tags (id serial PRIMARY KEY);",
                "V4__comments.sql": "CREATE TABLE comments (id serial PRIMARY KEY);",
                "R__views.sql": "CREATE OR REPLACE VIEW user_names AS SELECT name FROM users;"}


def test_adopting_flyway_stops_on_a_failed_row(tmp_path: Path, pg: Any) -> None:
    _flyway(pg.dsn, v3_success=False)
    before = _q(pg.dsn, "SELECT * FROM flyway_schema_history ORDER BY installed_rank")
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(_write(tmp_path / "m", FLYWAY_FILES)), "adopt": "flyway"})
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert _error(spec).startswith("adopt: flyway: flyway_schema_history records a failed migration, V3 "
                                   "(V3__tags.sql, installed 2025-03-03 10:00)")
    assert _q(pg.dsn, f"SELECT count(*) FROM {HISTORY}") == [(0,)]  # nothing adopted, nothing applied
    assert _q(pg.dsn, "SELECT to_regclass('comments') IS NULL") == [(True,)]
    assert _q(pg.dsn, "SELECT * FROM flyway_schema_history ORDER BY installed_rank") == before  # only read


def test_adopting_flyway_records_its_migrations_and_applies_the_rest(tmp_path: Path, pg: Any) -> None:
    _flyway(pg.dsn, v3_success=True)
    before = _q(pg.dsn, "SELECT * FROM flyway_schema_history ORDER BY installed_rank")
    directory = _write(tmp_path / "m", FLYWAY_FILES)
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory), "adopt": "flyway"})
    status_before = run_cli("migrations", str(spec), env=clean_env())
    assert status_before.code == 0, status_before.output
    assert [line.split()[0] for line in status_before.stdout.splitlines()[1:]] == ["pending"] * 5
    assert _q(pg.dsn, f"SELECT to_regclass('{HISTORY}') IS NULL") == [(True,)]  # `migrations` created nothing

    result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    rows = _q(pg.dsn, f"SELECT version, type, description, applied_by, applied_at::text, duration_ms, script "
                      f"FROM {HISTORY} ORDER BY installed_rank")
    assert rows[:3] == [("1", "ADOPTED", "users", "flyway-ci", "2025-03-01 10:00:00+00", 10, "V1__users.sql"),
                        ("2", "ADOPTED", "posts", "flyway-ci", "2025-03-02 10:00:00+00", 20, "V2__posts.sql"),
                        ("3", "ADOPTED", "tags", "flyway-ci", "2025-03-03 10:00:00+00", 30, "V3__tags.sql")]
    assert [(r[0], r[1], r[6]) for r in rows[3:]] == [("4", "SQL", "V4__comments.sql"),
                                                      (None, "REPEATABLE", "R__views.sql")]  # V4 only, and R once
    assert _q(pg.dsn, "SELECT * FROM flyway_schema_history ORDER BY installed_rank") == before  # only read

    table = run_cli("migrations", str(spec), env=clean_env())
    assert table.code == 0, table.output
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["STATE", "VERSION", "DESCRIPTION", "SCRIPT"]
    assert [line.split()[:2] for line in lines[1:]] == [["adopted", "1"], ["adopted", "2"], ["adopted", "3"],
                                                         ["applied", "4"], ["applied", "R"]]
    as_json = run_cli("migrations", str(spec), "--format", "json", env=clean_env())
    entries = json.loads(as_json.stdout)
    assert [(e["state"], e["version"], e["script"]) for e in entries][:4] == [
        ("adopted", "1", "V1__users.sql"), ("adopted", "2", "V2__posts.sql"), ("adopted", "3", "V3__tags.sql"),
        ("applied", "4", "V4__comments.sql")]
    assert entries[0]["applied_by"] == "flyway-ci" and entries[0]["applied_at"] == "2025-03-01 10:00:00Z"

    (directory / "V2__posts.sql").write_text("-- edited after it was applied\n" + USERS["V2__posts.sql"])
    (directory / "V1__users.sql").unlink()
    changed = run_cli("migrations", str(spec), env=clean_env())
    assert changed.code == 1
    assert [line.split()[:2] for line in changed.stdout.splitlines()[1:3]] == [["missing", "1"], ["changed", "2"]]


def test_migrations_command_errors(tmp_path: Path, pg: Any) -> None:
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(_write(tmp_path / "m", USERS))})
    unknown = run_cli("migrations", str(spec), "--step", "nope", env=clean_env())
    assert unknown.code == 2 and unknown.stderr.strip() == "migrations: no migrate step 'nope' (migrate steps: migrate)"
    assert run_cli("migrations", str(spec), "--format", "xml", env=clean_env()).code == 2
    assert "import prefect" not in unknown.stderr
