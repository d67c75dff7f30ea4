"""Lint before apply, on real PostgreSQL and the real squawk binary: ``check`` prints each finding of the pending
migrations, ``--strict`` exits 1 on one, and the ``migrate`` step refuses a file with a blocking finding before
anything is applied, unless the file accepts it with an allow line and a reason."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import psycopg

from prefect_init.kinds.migrate.lint import squawk_binary
from tests.helpers import clean_env, run_cli
from tests.kinds.migrate.test_step import HISTORY, _error, _q, _spec, _write

BASE = {"V1__accounts.sql": "CREATE TABLE accounts (id bigint PRIMARY KEY, name text, code varchar(20));"}
INDEX = "CREATE INDEX accounts_name ON accounts (name);\n"
ALLOW = "-- prefect-init: allow require-concurrent-index-creation (accounts holds 40 rows: locked for milliseconds)\n"
CONCURRENT = ("-- prefect-init: no-transaction\n"
              "CREATE INDEX CONCURRENTLY IF NOT EXISTS accounts_name ON accounts (name);\n")


def _applied(tmp_path: Path, dsn: str) -> Path:
    """The database with V1 (accounts) applied by the step; returns the migrations dir."""
    directory = _write(tmp_path / "m", BASE)
    assert run_cli("run", str(_spec(tmp_path, {"database": dsn, "dir": str(directory)}, name="base.yaml"))).code == 0
    return directory


def _indexes(dsn: str) -> list[tuple[Any, ...]]:
    return _q(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 'accounts' ORDER BY 1")


def test_the_squawk_binary_is_installed() -> None:
    assert squawk_binary() is not None


def test_check_strict_reports_a_blocking_index_on_an_existing_table(tmp_path: Path, pg: Any) -> None:
    directory = _applied(tmp_path, pg.dsn)
    _write(directory, {"V2__index.sql": "\n" + INDEX})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})
    strict = run_cli("check", str(spec), "--strict", cwd=tmp_path)
    assert strict.code == 1, strict.output
    assert "m/V2__index.sql:2: require-concurrent-index-creation: " in strict.stdout
    assert "[blocks migrate; instead: create the index with CREATE INDEX CONCURRENTLY" in strict.stdout
    assert "1 pending of 2 files" in strict.stdout
    assert "V1__accounts.sql" not in strict.stdout  # applied: not linted unless --all
    assert "require-lock-timeout" not in strict.stdout  # the step sets it itself
    everything = run_cli("check", str(spec), "--all", cwd=tmp_path)
    assert everything.code == 0  # without --strict a finding is printed, not an error
    assert "m/V1__accounts.sql:1: prefer-text-field: " in everything.stdout
    assert "all 2 files" in everything.stdout


def test_check_without_the_database_lints_every_file_and_says_so(tmp_path: Path) -> None:
    directory = _write(tmp_path / "m", {**BASE, "V2__index.sql": INDEX})
    spec = _spec(tmp_path, {"database": "postgresql://nobody@127.0.0.1:1/none", "dir": str(directory)})
    result = run_cli("check", str(spec), "--strict", cwd=tmp_path)
    assert result.code == 1
    assert "all 2 files (the database did not answer, so pending is unknown" in result.stdout
    # V1 creates accounts, so in this run the index is on a new, empty table: reported, not blocking
    assert "m/V2__index.sql:1: require-concurrent-index-creation: " in result.stdout
    assert "accounts is created by an earlier file of this run" in result.stdout


def test_the_step_refuses_a_blocking_finding_before_applying_anything(tmp_path: Path, pg: Any) -> None:
    directory = _applied(tmp_path, pg.dsn)
    _write(directory, {"V2__seed.sql": "INSERT INTO accounts (id, name) VALUES (1, 'a');", "V3__index.sql": INDEX})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})
    result = run_cli("run", str(spec))
    assert result.code == 1
    error = _error(spec)
    assert error.startswith("refused before applying anything: 1 finding(s)"), error
    assert "V3__index.sql:1: require-concurrent-index-creation: " in error
    assert "instead: create the index with CREATE INDEX CONCURRENTLY" in error
    assert _q(pg.dsn, f"SELECT script FROM {HISTORY}") == [("V1__accounts.sql",)]  # V2 not applied either
    assert _q(pg.dsn, "SELECT count(*) FROM accounts") == [(0,)]
    assert _indexes(pg.dsn) == [("accounts_pkey",)]


def test_the_same_file_with_an_allow_line_and_a_reason_applies(tmp_path: Path, pg: Any) -> None:
    directory = _applied(tmp_path, pg.dsn)
    _write(directory, {"V2__index.sql": ALLOW + INDEX})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})
    assert run_cli("check", str(spec), "--strict", cwd=tmp_path).code == 0
    result = run_cli("run", str(spec))
    assert result.code == 0, result.stderr
    assert ("V2__index.sql:2: require-concurrent-index-creation: allowed on purpose: accounts holds 40 rows: "
            "locked for milliseconds") in result.stderr
    assert _indexes(pg.dsn) == [("accounts_name",), ("accounts_pkey",)]


def test_an_allow_line_without_a_reason_is_refused(tmp_path: Path, pg: Any) -> None:
    directory = _applied(tmp_path, pg.dsn)
    _write(directory, {"V2__index.sql": "-- prefect-init: allow require-concurrent-index-creation\n" + INDEX})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})
    assert run_cli("run", str(spec)).code == 1
    error = _error(spec)
    assert "V2__index.sql:1: prefect-init-allow-without-reason: " in error
    assert "V2__index.sql:2: require-concurrent-index-creation: " in error
    assert _indexes(pg.dsn) == [("accounts_pkey",)]


def test_the_concurrent_form_in_a_no_transaction_file_applies(tmp_path: Path, pg: Any) -> None:
    directory = _applied(tmp_path, pg.dsn)
    _write(directory, {"V2__index.sql": CONCURRENT})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})
    assert run_cli("check", str(spec), "--strict", cwd=tmp_path).code == 0
    result = run_cli("run", str(spec))
    assert result.code == 0, result.stderr
    assert _indexes(pg.dsn) == [("accounts_name",), ("accounts_pkey",)]


def test_a_concurrent_index_in_a_transactional_file_is_refused_in_words(tmp_path: Path, pg: Any) -> None:
    directory = _applied(tmp_path, pg.dsn)
    _write(directory, {"V2__index.sql": "-- an index\nCREATE INDEX CONCURRENTLY accounts_name ON accounts (name);"})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})
    assert run_cli("run", str(spec)).code == 1
    error = _error(spec)
    assert "V2__index.sql:2: prefect-init-concurrently-in-transaction: CREATE INDEX ... CONCURRENTLY cannot run " \
           "inside a transaction" in error
    assert "first line is `-- prefect-init: no-transaction`" in error
    assert _q(pg.dsn, f"SELECT count(*) FROM {HISTORY}") == [(1,)]


def test_lint_warn_applies_and_logs_and_style_rules_never_block(tmp_path: Path, pg: Any) -> None:
    directory = _applied(tmp_path, pg.dsn)
    _write(directory, {"V2__index.sql": INDEX, "V3__style.sql": "ALTER TABLE accounts ADD COLUMN n int;"})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory), "lint": "warn"})
    result = run_cli("run", str(spec))
    assert result.code == 0, result.stderr
    assert "lint: V2__index.sql:1: require-concurrent-index-creation: " in result.stderr
    assert "lint: V3__style.sql:1: prefer-bigint-over-int: " in result.stderr
    assert _q(pg.dsn, f"SELECT count(*) FROM {HISTORY}") == [(3,)]


def test_lint_off_does_not_run_squawk(tmp_path: Path, pg: Any) -> None:
    directory = _applied(tmp_path, pg.dsn)
    _write(directory, {"V2__index.sql": INDEX})
    spec = _spec(tmp_path, {"database": pg.dsn, "dir": str(directory), "lint": "off"})
    result = run_cli("run", str(spec))
    assert result.code == 0, result.stderr
    assert "require-concurrent-index-creation" not in result.stderr


def test_a_failed_concurrent_build_leaves_an_invalid_index_which_the_step_rebuilds(tmp_path: Path, pg: Any) -> None:
    directory = _applied(tmp_path, pg.dsn)
    unique = "-- prefect-init: no-transaction\nCREATE UNIQUE INDEX CONCURRENTLY accounts_code ON accounts (code);\n"
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO accounts VALUES (1, 'a', 'dup'), (2, 'b', 'dup')")
        # the same build by hand, failing half way: PostgreSQL leaves the index behind, INVALID
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            conn.execute("CREATE UNIQUE INDEX CONCURRENTLY accounts_code ON accounts (code)")
        conn.execute("UPDATE accounts SET code = 'c' || id")
    assert _q(pg.dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_code'::regclass") == [(False,)]
    _write(directory, {"V2__unique.sql": unique})
    result = run_cli("run", str(_spec(tmp_path, {"database": pg.dsn, "dir": str(directory)})))
    assert result.code == 0, result.stderr
    assert "dropped the INVALID index public.accounts_code" in result.stderr
    assert _q(pg.dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_code'::regclass") == [(True,)]


def test_the_servers_version_reaches_squawk(tmp_path: Path, pg: Any) -> None:
    """A constant DEFAULT rewrites the table before PostgreSQL 11 only: the step passes its server's version."""
    from prefect_init.kinds.migrate.history import load_dir
    from prefect_init.kinds.migrate.lint import lint
    from prefect_init.kinds.migrate.step import _pg_version

    directory = _write(tmp_path / "v", {"V1__flag.sql": "ALTER TABLE accounts ADD COLUMN flag bigint DEFAULT 0;"})
    files, _ = load_dir(directory)
    assert [f.rule for f in lint(files, pg_version="10.0")] == ["adding-field-with-default"]
    with psycopg.connect(pg.dsn) as conn:
        version = _pg_version(conn)
    assert version is not None and int(version.split(".")[0]) >= 11
    assert lint(files, pg_version=version) == []


def test_check_unset_ok_lints_every_file_when_the_database_is_not_set_here(tmp_path: Path) -> None:
    directory = _write(tmp_path / "m", {**BASE, "V2__index.sql": INDEX, "V3__type.sql":
                                        "ALTER TABLE accounts ALTER COLUMN code TYPE varchar(40);"})
    spec = _spec(tmp_path, {"database": "${DATABASE_URL}", "dir": str(directory)})
    env = {k: v for k, v in clean_env().items() if k != "DATABASE_URL"}
    result = run_cli("check", str(spec), "--unset-ok", "--strict", cwd=tmp_path, env=env)
    assert result.code == 1, result.output
    assert "all 3 files (the database is not set here, so pending is unknown)" in result.stdout
    assert "m/V3__type.sql:1: changing-column-type: " in result.stdout
    assert "DATABASE_URL: not set here" in result.stdout
    # a value that only validates once its variable is set: the step is a stand-in, its dir still linted
    stand_in = _spec(tmp_path, {"database": "${DATABASE_URL}", "dir": str(directory),
                                "lock_timeout": "${LOCK_TIMEOUT}"}, name="stand-in.yaml")
    result = run_cli("check", str(stand_in), "--unset-ok", "--strict", cwd=tmp_path, env=env)
    assert result.code == 1, result.output
    assert "all 3 files (the database is not set here, so pending is unknown)" in result.stdout
    assert "m/V3__type.sql:1: changing-column-type: " in result.stdout


def test_check_with_a_database_url_postgres_cannot_read_lints_every_file(tmp_path: Path) -> None:
    directory = _write(tmp_path / "m", {**BASE, "V2__index.sql": INDEX})
    result = run_cli("check", str(_spec(tmp_path, {"database": "not a url", "dir": str(directory)})), cwd=tmp_path)
    assert result.code == 0, result.output
    assert "all 2 files (the database URL is not one PostgreSQL reads, so pending is unknown)" in result.stdout


def test_check_says_when_the_migrations_dir_is_not_here(tmp_path: Path) -> None:
    spec = _spec(tmp_path, {"database": "postgresql://nobody@127.0.0.1:1/none", "dir": str(tmp_path / "absent")})
    result = run_cli("check", str(spec), "--strict")
    assert result.code == 0, result.output
    assert result.stdout.splitlines()[-1] == (f"lint migrate: not linted: migrations dir {tmp_path / 'absent'}: not a "
                                              "directory (is the volume mounted?)")
