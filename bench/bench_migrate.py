"""Migrate-step benchmark (issue 6), measured in one run on a real PostgreSQL (pgserver's binaries).

    .venv/bin/python bench/bench_migrate.py [--runs N]

1. 20 replicas racing against one: the same migration set (tables, N rows, indexes; N = 200k and 2M) applied
   to a fresh database by one `prefect-init run`, then by 20 started at once; wall of the slowest against the
   single one. Target: <= 1.5x. Also shown: the coordination tail (from the applying replica's "applied N
   migrations" line to the last of the 20 exiting), and 20 replicas on an
   already migrated database (each only takes the lock, reads the history and leaves): the start-up cost of 20
   Python processes sharing this machine's 2 cores (in a cluster each replica has its own pod's CPU).
2. 500 small migrations on a fresh database: prefect-init against `psql -f` of the same files concatenated
   (one transaction per file there too). Target: <= 2x.
3. (issue 33) The site's readers behind a migration: a transaction reads `accounts` (100k rows) for 8 s while
   `ALTER TABLE accounts ADD COLUMN nickname text` is applied, by prefect-init (lock_timeout 2s, retries) and by
   `psql -f` (unbounded); two readers query `accounts` every 100 ms: the worst reader query's wait, and the
   migration's wall.
4. (issue 33) The lint's cost: squawk over the 500 small files in one call (as the step lints), per file; and
   one file alone (a process start).

    .venv/bin/python bench/bench_migrate.py --only locks lint     # just 3 and 4
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from pgserver._commands import POSTGRES_BIN_PATH

from bench._common import BIN, base_env, table
from tests.conftest import free_port
from tests.pg import Cluster, init_template


def migration_set(rows: int) -> dict[str, str]:
    return {
        "V1__accounts.sql": "CREATE TABLE accounts (id bigserial PRIMARY KEY, email text NOT NULL, "
                            "created timestamptz);",
        "V2__fill.sql": "INSERT INTO accounts (email, created) SELECT 'user' || g || '@example.com', now() "
                        f"FROM generate_series(1, {rows}) g;",
        "V3__email_index.sql": "CREATE UNIQUE INDEX accounts_email ON accounts (email);",
        "V4__orders.sql": f"CREATE TABLE orders AS SELECT g AS id, (g % {rows}) + 1 AS account_id, g * 1.5 AS total "
                          f"FROM generate_series(1, {rows}) g;",
        "V5__orders_fk.sql": "ALTER TABLE orders ADD PRIMARY KEY (id); CREATE INDEX ON orders (account_id);",
        "R__stats.sql": "CREATE OR REPLACE VIEW order_totals AS SELECT account_id, sum(total) FROM orders "
                        "GROUP BY 1;",
    }


def spec_for(work: Path, dsn: str, directory: Path, name: str) -> Path:
    path = work / f"{name}.yaml"
    path.write_text(f"version: 1\nname: bench-migrate\nsteps:\n  - name: migrate\n    timeout: 10m\n"
                    f"    migrate:\n      database: {dsn}\n      dir: {directory}\n")
    return path


APPLIED = re.compile(r"^(\S+) INFO  \[migrate\] applied \d+ migrations$", re.MULTILINE)


def run_replicas(spec: Path, count: int) -> tuple[float, float]:
    """Wall of the slowest of ``count`` replicas started at once, and the coordination tail: from the moment the
    applying replica logged "applied N migrations" to the last replica's exit."""
    started = time.perf_counter()
    procs = [subprocess.Popen([str(BIN / "prefect-init"), "run", str(spec), "--local"], env=base_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for _ in range(count)]
    logs = [p.communicate()[1] for p in procs]
    wall, ended = time.perf_counter() - started, time.time()
    if any(p.returncode for p in procs):
        raise RuntimeError(f"a replica failed: {[p.returncode for p in procs]}")
    applied = [datetime.fromisoformat(m.replace("Z", "+00:00")).timestamp() for log in logs
               for m in APPLIED.findall(log)]
    return wall, (ended - applied[0]) if applied else 0.0


def fresh_database(cluster: Cluster, name: str) -> str:
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    return cluster.dsn.rsplit("/", 1)[0] + f"/{name}"


HOLD = 8.0
"""How long the reporting transaction reads accounts (the issue's measurement: 8 s)."""


def reader_waits(dsn: str, migrate: list[str]) -> tuple[float, float, int]:
    """Worst reader query wait (s), the migration's wall (s) and how many reader queries ran, while a
    transaction holds a read lock on accounts for :data:`HOLD` seconds and ``migrate`` runs."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS accounts")
        conn.execute("CREATE TABLE accounts (id bigint PRIMARY KEY, name text)")
        conn.execute("INSERT INTO accounts SELECT g, 'n' || g FROM generate_series(1, 100000) g")
    durations: list[float] = []
    stop = threading.Event()

    def read() -> None:
        with psycopg.connect(dsn, autocommit=True, application_name="bench-reader") as conn:
            while not stop.is_set():
                started = time.perf_counter()
                conn.execute("SELECT count(*) FROM accounts").fetchone()
                durations.append(time.perf_counter() - started)
                stop.wait(0.1)

    holder = psycopg.connect(dsn, application_name="bench-report")
    holder.execute("SELECT count(*) FROM accounts").fetchone()
    release = threading.Timer(HOLD, holder.rollback)  # a bench, not a test: the report simply ends after HOLD s
    readers = [threading.Thread(target=read, daemon=True) for _ in range(2)]
    for thread in readers:
        thread.start()
    release.start()
    started = time.perf_counter()
    subprocess.run(migrate, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=base_env())
    wall = time.perf_counter() - started
    release.join()
    time.sleep(0.3)
    stop.set()
    for thread in readers:
        thread.join(timeout=30)
    holder.close()
    return max(durations), wall, len(durations)


def bench_locks(work: Path, cluster: Cluster, runs: int) -> None:
    directory = work / "alter"
    directory.mkdir()
    sql = "ALTER TABLE accounts ADD COLUMN nickname text;\n"
    (directory / "V1__nickname.sql").write_text(sql)
    (work / "alter.sql").write_text(sql)
    ours, psql = [], []
    for i in range(runs):
        dsn = fresh_database(cluster, f"locks{i}")
        spec = spec_for(work, dsn, directory, f"locks{i}")
        spec.write_text(spec.read_text() + "      lock_timeout: 2s\n")
        ours.append(reader_waits(dsn, [str(BIN / "prefect-init"), "run", str(spec), "--local"]))
        dsn = fresh_database(cluster, f"lockspsql{i}")
        psql.append(reader_waits(dsn, [str(POSTGRES_BIN_PATH / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-f",
                                       str(work / "alter.sql"), dsn]))
    print(f"\n## Readers behind ALTER TABLE while a transaction reads the table for {HOLD:g} s "
          f"(median of {runs} runs; 2 readers every 100 ms)\n")
    print(table([(what, f"{statistics.median(r[0] for r in rows):.2f}", f"{max(r[0] for r in rows):.2f}",
                  f"{statistics.median(r[1] for r in rows):.2f}", f"{statistics.median(r[2] for r in rows):.0f}")
                 for what, rows in (("prefect-init migrate (lock_timeout 2s, retries)", ours),
                                    ("psql -f (no lock_timeout)", psql))],
                ("migration", "worst reader wait s (median)", "worst of all runs s", "migration wall s",
                 "reader queries")))


def bench_lint(work: Path, runs: int) -> None:
    from prefect_init.kinds.migrate.history import load_dir
    from prefect_init.kinds.migrate.lint import lint

    small = work / "lint-small"
    small.mkdir()
    for n in range(1, 501):
        (small / f"V{n}__step_{n}.sql").write_text(
            f"CREATE TABLE t{n} (id bigint PRIMARY KEY, v text);\nINSERT INTO t{n} VALUES ({n}, 'x');\n"
            f"CREATE INDEX t{n}_v ON t{n} (v);\n")
    versioned, _ = load_dir(small)
    batch, single = [], []
    for _ in range(max(runs, 5)):
        started = time.perf_counter()
        lint(versioned)
        batch.append(time.perf_counter() - started)
        started = time.perf_counter()
        lint(versioned[:1])
        single.append(time.perf_counter() - started)
    per_file = statistics.median(batch) / len(versioned)
    print(f"\n## Lint cost (squawk {_squawk_version()}, median of {max(runs, 5)} runs)\n")
    print(table([("500 files in one call", f"{statistics.median(batch) * 1000:.0f}", f"{per_file * 1000:.2f}"),
                 ("1 file", f"{statistics.median(single) * 1000:.1f}", f"{statistics.median(single) * 1000:.1f}")],
                ("what", "wall ms", "per file ms")))


def _squawk_version() -> str:
    from prefect_init.kinds.migrate.lint import squawk_binary

    binary = squawk_binary()
    if binary is None:
        return "not installed"
    return subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip().split()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=["race", "small", "locks", "lint"],
                        default=["race", "small", "locks", "lint"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-migrate-"))
    cluster = Cluster(init_template(work / "template"), work / "cluster", free_port())
    cluster.start()
    try:
        if "locks" in args.only:
            bench_locks(work, cluster, args.runs)
        if "lint" in args.only:
            bench_lint(work, args.runs)
        if "race" in args.only:
            race(work, cluster, args.runs)
        if "small" in args.only:
            small_migrations(work, cluster, args.runs)
    finally:
        cluster.stop()


def race(work: Path, cluster: Cluster, runs: int) -> None:
    rows_out = []
    for rows in (200_000, 2_000_000):
        heavy = work / f"set{rows}"
        heavy.mkdir()
        for name, sql in migration_set(rows).items():
            (heavy / name).write_text(sql)
        single, racing, tails, settled = [], [], [], []
        for i in range(runs):  # interleaved: both sides see the same machine load
            dsn = fresh_database(cluster, f"single{rows}_{i}")
            single.append(run_replicas(spec_for(work, dsn, heavy, f"single{rows}_{i}"), 1)[0])
            dsn = fresh_database(cluster, f"race{rows}_{i}")
            spec = spec_for(work, dsn, heavy, f"race{rows}_{i}")
            wall, tail = run_replicas(spec, 20)
            racing.append(wall)
            tails.append(tail)
            settled.append(run_replicas(spec, 20)[0])
        one, twenty = statistics.median(single), statistics.median(racing)
        rows_out.append((f"{rows:,} rows", f"{one:.2f}", f"{twenty:.2f}", f"{twenty / one:.2f}x",
                         f"{statistics.median(tails):.2f}", f"{statistics.median(settled):.2f}"))
    print(f"## 20 replicas racing on a fresh database (median of {runs} runs)\n")
    print(table(rows_out, ("migration set", "1 replica s", "20 replicas, slowest s", "ratio",
                           "applied -> last replica out s", "20 replicas, already migrated s")))


def small_migrations(work: Path, cluster: Cluster, runs: int) -> None:
    small = work / "small"
    small.mkdir()
    for n in range(1, 501):
        (small / f"V{n}__step_{n}.sql").write_text(
            f"CREATE TABLE t{n} (id int PRIMARY KEY, v text);\nINSERT INTO t{n} VALUES ({n}, 'x');\n")
    concatenated = work / "all.sql"
    concatenated.write_text("".join(f"BEGIN;\n{(small / f'V{n}__step_{n}.sql').read_text()}COMMIT;\n"
                                    for n in range(1, 501)))
    ours, psql = [], []
    for i in range(runs):
        dsn = fresh_database(cluster, f"small{i}")
        ours.append(run_replicas(spec_for(work, dsn, small, f"small{i}"), 1)[0])
        dsn = fresh_database(cluster, f"psql{i}")
        started = time.perf_counter()
        subprocess.run([str(POSTGRES_BIN_PATH / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-f", str(concatenated),
                        dsn], check=True, stdout=subprocess.DEVNULL)
        psql.append(time.perf_counter() - started)
    print(f"\n## 500 small migrations on a fresh database (median of {runs} runs)\n")
    print(table([("prefect-init migrate", f"{statistics.median(ours):.2f}",
                  f"{statistics.median(ours) / statistics.median(psql):.2f}x"),
                 ("psql -f (files concatenated, a transaction each)", f"{statistics.median(psql):.2f}", "1x")],
                ("what", "wall s", "ratio")))


if __name__ == "__main__":
    main()
