"""The migrate step on real PostgreSQL (pgserver's binaries, TCP + password), through the CLI."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.helpers import CLI, clean_env, run_cli, run_cli_reacting
from tests.pg import PASSWORD

HISTORY = "prefect_init_schema_history"


def _spec(tmp_path: Path, migrate: dict[str, Any], name: str = "init.yaml", **step: Any) -> Path:
    path = tmp_path / name
    body = {"name": "migrate", "retries": 0, "timeout": "60s", **step, "migrate": migrate}
    path.write_text(json.dumps({"version": 1, "name": "mig", "status_file": f"{name}.status.json",
                                "steps": [body]}))
    return path


def _error(spec: Path) -> str:
    step: dict[str, Any] = json.loads(Path(f"{spec}.status.json").read_text())["steps"][0]
    return str(step.get("error", ""))


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


def _q(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


MIGRATIONS = {
    "V1__create_users.sql": "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL);",
    "V2__seed.sql": "INSERT INTO users (name) VALUES ('admin');\nINSERT INTO users (name) VALUES ('ops');",
    "V10__posts.sql": "CREATE TABLE posts (id serial PRIMARY KEY, user_id int REFERENCES users);",
    "V2.1__audit.sql": "CREATE TABLE audit (at timestamptz DEFAULT now());",
    "R__views.sql": "CREATE OR REPLACE VIEW user_names AS SELECT name FROM users;",
}


def test_applies_in_numeric_order_then_repeatables_and_records_history(tmp_path: Path, pg: Any) -> None:
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(_write(tmp_path / "m", MIGRATIONS))})
    result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    rows = _q(pg.dsn, f"SELECT version, script, type, success, applied_by <> '', duration_ms >= 0 FROM {HISTORY} "
                      "ORDER BY installed_rank")
    assert [r[1] for r in rows] == ["V1__create_users.sql", "V2__seed.sql", "V2.1__audit.sql", "V10__posts.sql",
                                    "R__views.sql"]
    assert [r[0] for r in rows] == ["1", "2", "2.1", "10", None]
    assert all(r[3] and r[4] and r[5] for r in rows)
    assert PASSWORD not in result.output
    again = run_cli("run", str(spec))
    assert again.code == 0 and "up to date" in again.stderr
    assert len(_q(pg.dsn, f"SELECT 1 FROM {HISTORY}")) == 5


def test_ten_replicas_racing_apply_each_migration_once(tmp_path: Path, pg: Any) -> None:
    migrations = dict(MIGRATIONS)
    migrations["V3__slow.sql"] = "SELECT pg_sleep(0.5);\nINSERT INTO users (name) VALUES ('once');"
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(_write(tmp_path / "m", migrations))})
    procs = [subprocess.Popen([*CLI, "run", str(spec), "--status-file", str(tmp_path / f"s{i}.json")],
                              env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(10)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 10, [o[1][-500:] for o in outputs]
    assert _q(pg.dsn, "SELECT count(*) FROM users WHERE name = 'once'") == [(1,)]
    assert _q(pg.dsn, "SELECT count(*) FROM users") == [(3,)]
    assert _q(pg.dsn, f"SELECT script, count(*) FROM {HISTORY} GROUP BY script HAVING count(*) > 1") == []
    assert sum("applied 6 migrations" in o[1] for o in outputs) == 1
    assert sum("waiting for it" in o[1] for o in outputs) >= 1
    assert _q(pg.dsn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]


def test_failing_migration_rolls_back_whole_and_the_fix_applies(tmp_path: Path, pg: Any) -> None:
    directory = _write(tmp_path / "m", {
        "V1__base.sql": "CREATE TABLE base (id int);",
        "V2__broken.sql": "CREATE TABLE half (id int);\nINSERT INTO half VALUES (1);\nSELEC oops;",
    })
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert _error(spec).startswith('V2__broken.sql failed at line 3: syntax error at or near "SELEC" '
                                   "(rolled back whole; not recorded)")
    assert _q(pg.dsn, "SELECT to_regclass('half') IS NULL") == [(True,)]
    assert _q(pg.dsn, f"SELECT script FROM {HISTORY}") == [("V1__base.sql",)]
    (directory / "V2__broken.sql").write_text("CREATE TABLE half (id int);\nINSERT INTO half VALUES (1);")
    fixed = run_cli("run", str(spec))
    assert fixed.code == 0, fixed.output
    assert _q(pg.dsn, "SELECT count(*) FROM half") == [(1,)]


def test_changed_or_missing_applied_file_fails_and_names_it(tmp_path: Path, pg: Any) -> None:
    directory = _write(tmp_path / "m", {"V1__a.sql": "CREATE TABLE a (id int);", "V2__b.sql": "SELECT 1;"})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})
    assert run_cli("run", str(spec)).code == 0
    (directory / "V1__a.sql").write_text("CREATE TABLE a (id bigint);")
    (directory / "V2__b.sql").unlink()
    result = run_cli("run", str(spec))
    assert result.code == 1
    error = _error(spec)
    assert "V1 (V1__a.sql) changed after it was applied" in error
    assert "V2 (V2__b.sql) was applied but its file is gone" in error
    allowed = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory), "allow_changed": True,
                               "allow_missing": True}, name="allowed.yaml")
    assert run_cli("run", str(allowed)).code == 0


def test_out_of_order_and_target(tmp_path: Path, pg: Any) -> None:
    directory = _write(tmp_path / "m", {"V1__a.sql": "SELECT 1;", "V3__c.sql": "SELECT 3;", "V4__d.sql": "SELECT 4;"})
    target = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory), "target": "3"})
    assert run_cli("run", str(target)).code == 0
    assert _q(pg.dsn, f"SELECT version FROM {HISTORY} ORDER BY installed_rank") == [("1",), ("3",)]
    _write(directory, {"V2__b.sql": "SELECT 2;"})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)}, name="all.yaml")
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert "V2__b.sql: older than the newest applied version V3 (out_of_order: true" in _error(spec)
    ooo = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory), "out_of_order": True}, name="ooo.yaml")
    assert run_cli("run", str(ooo)).code == 0
    assert _q(pg.dsn, f"SELECT version FROM {HISTORY} ORDER BY installed_rank") == [("1",), ("3",), ("2",), ("4",)]


def test_killed_connection_leaves_no_row_no_lock_and_a_rerun_succeeds(tmp_path: Path, pg: Any) -> None:
    directory = _write(tmp_path / "m", {"V1__sleepy.sql": "CREATE TABLE sleepy (id int);\nSELECT pg_sleep(3);"})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})
    proc = subprocess.Popen([*CLI, "run", str(spec)], env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    killed: list[tuple[Any, ...]] = []
    while not killed and time.monotonic() < deadline:
        killed = _q(pg.dsn, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE application_name = 'prefect-init-migrate' AND query LIKE '%pg_sleep%'")
        time.sleep(0.05)
    assert killed == [(True,)]
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert "connection lost" in _error(spec)
    assert PASSWORD not in stderr
    assert _q(pg.dsn, f"SELECT count(*) FROM {HISTORY}") == [(0,)]
    assert _q(pg.dsn, "SELECT to_regclass('sleepy') IS NULL") == [(True,)]
    assert _q(pg.dsn, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    rerun = run_cli("run", str(spec))  # nothing was recorded, so the same file simply applies
    assert rerun.code == 0, rerun.output
    assert _q(pg.dsn, f"SELECT script FROM {HISTORY}") == [("V1__sleepy.sql",)]


def test_no_transaction_file(tmp_path: Path, pg: Any) -> None:
    directory = _write(tmp_path / "m", {
        "V1__t.sql": "CREATE TABLE t (id int);",
        "V2__index.sql": "-- prefect-init: no-transaction\nCREATE INDEX CONCURRENTLY t_id ON t (id);",
    })
    result = run_cli("run", str(_spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})))
    assert result.code == 0, result.output
    assert _q(pg.dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 't'") == [("t_id",)]


def test_repeatable_reapplied_when_changed(tmp_path: Path, pg: Any) -> None:
    directory = _write(tmp_path / "m", {"V1__t.sql": "CREATE TABLE t (a int, b int);",
                                        "R__v.sql": "CREATE OR REPLACE VIEW v AS SELECT a FROM t;"})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})
    assert run_cli("run", str(spec)).code == 0
    assert run_cli("run", str(spec)).code == 0
    assert _q(pg.dsn, f"SELECT count(*) FROM {HISTORY} WHERE script = 'R__v.sql'") == [(1,)]
    _write(directory, {"R__v.sql": "CREATE OR REPLACE VIEW v AS SELECT a, b FROM t;"})
    assert run_cli("run", str(spec)).code == 0
    assert _q(pg.dsn, f"SELECT count(*) FROM {HISTORY} WHERE script = 'R__v.sql'") == [(2,)]
    assert _q(pg.dsn, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'v'") == [(2,)]


def test_command_with_racing_replicas_runs_once_per_version(tmp_path: Path, pg: Any) -> None:
    counter = tmp_path / "runs"
    command = ["sh", "-c", f"echo run >> {counter}; sleep 0.3"]
    specs = {v: _spec(tmp_path, {"database": pg.dsn, "command": command, "version": v}, name=f"{v}.yaml")
             for v in ("v1", "v2")}
    procs = [subprocess.Popen([*CLI, "run", str(specs["v1"]), "--status-file", str(tmp_path / f"s{i}.json")],
                              env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for i in range(6)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    assert counter.read_text().count("run") == 1
    assert run_cli("run", str(specs["v2"])).code == 0
    assert counter.read_text().count("run") == 2
    assert _q(pg.dsn, f"SELECT version, type FROM {HISTORY} ORDER BY installed_rank") == [("v1", "COMMAND"),
                                                                                          ("v2", "COMMAND")]


def test_lock_wait_is_bounded_by_the_deadline(tmp_path: Path, pg: Any) -> None:
    holder = psycopg.connect(pg.dsn, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(hashtext('prefect-init:.prefect_init_schema_history'))")
    try:
        spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(_write(tmp_path / "m", MIGRATIONS))}, timeout="1s")
        started = time.monotonic()
        result = run_cli("run", str(spec))
        assert result.code == 1
        assert time.monotonic() - started < 6
        assert "deadline reached while migrating or waiting for the migration lock" in _error(spec)
    finally:
        holder.close()


@pytest.mark.parametrize(("migrate", "message"), [
    ({"database": "x"}, "give exactly one of dir (SQL files) or command"),
    ({"database": "x", "dir": "m", "command": ["a"], "version": "1"}, "give exactly one of dir"),
    ({"database": "x", "command": ["alembic", "upgrade", "head"]}, "command needs version:"),
    ({"database": "x", "dir": "m", "table": "bad-name"}, "steps[0].migrate.table: expected an SQL name"),
    ({"database": "x", "dir": "m", "target": "v5"}, "steps[0].migrate.target: expected a version like 5"),
])
def test_bad_migrate_specs(tmp_path: Path, migrate: dict[str, Any], message: str) -> None:
    result = run_cli("check", str(_spec(tmp_path, migrate)))
    assert result.code == 2
    assert message in result.stderr, result.stderr


def test_migrations_wait_target(tmp_path: Path, pg: Any) -> None:
    directory = _write(tmp_path / "m", {"V1__a.sql": "SELECT 1;", "V2__b.sql": "SELECT 2;"})
    waiter = tmp_path / "wait.yaml"
    waiter.write_text(json.dumps({"version": 1, "name": "w", "steps": [{"name": "w", "timeout": "30s", "wait": [
        {"migrations": {"database": pg.dsn, "version": "2"}}]}]}))
    migrator = threading.Thread(target=lambda: run_cli("run", str(_spec(tmp_path, {"database": pg.dsn,
                                                                          "dir": str(directory)}))))
    # the migration starts once the waiter has seen the database without a history table: no timing window
    result = run_cli_reacting("run", str(waiter), on={"no history table yet": migrator.start}, timeout=60)
    migrator.join(timeout=60)
    assert result.code == 0, result.stderr
    assert "[w] waiting for migrations" in result.stderr and "[w] ready: migrations" in result.stderr
    stderr = result.stderr
    assert PASSWORD not in stderr
