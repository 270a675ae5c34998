"""Benchmark (run by hand): what loading on several connections into a fresh database could give.

Issue 32 asked whether a restore could go below pg_restore by loading tables in parallel into a
fresh database and swapping it in by rename. Before building that, this measures its best case
with PostgreSQL's own tool, which already does exactly that work: `pg_restore -j 2` of a whole
`pg_dump -Fc` (schema, then the tables' data on two connections, then indexes and foreign keys
on two connections) into a new database. Against it, interleaved round by round:

- `data-only`: what the kit's benchmarks compare with, `pg_restore --data-only
  --single-transaction --disable-triggers` into the emptied tables (indexes kept up row by row);
- `fresh -j 2`: `createdb`, then `pg_restore -j 2` of the whole dump (several transactions);
- `fresh, one transaction`: `createdb`, then `pg_restore --single-transaction` of the whole dump
  (indexes and foreign keys built after the data, on one connection).

Each result is checked against the original's md5 per table. The kit's own start-up, the swap
(connections to the app's database ended, two renames) and the schema's copy are not included:
the figures are a lower bound for the idea.

    .venv/bin/python benchmarks/parallel_restore_bound.py [--dataset orders|text] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backup_vs_pg_dump import DATASETS, PG_RESTORE, admin_server, checksums  # noqa: E402

DUMP = "/tmp/parallel-bound.dump"  # inside the postgres container


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="orders")
    args = parser.parse_args()
    schema, tables, described = DATASETS[args.dataset]
    stack, password, server = admin_server()
    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True

    def sql(statement: str, database: str = "postgres") -> None:
        conn = admin if database == "postgres" else psycopg2.connect(f"{server}/{database}")
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(statement)
        if conn is not admin:
            conn.close()

    for name in ("devkit_bound", "devkit_bound_fresh"):
        sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    sql("CREATE DATABASE devkit_bound")
    sql(schema, "devkit_bound")
    sql("VACUUM ANALYZE", "devkit_bound")
    original = checksums(f"{server}/devkit_bound", tables)
    # The password reaches pg_dump/pg_restore through the environment, never a command line.
    pg = ["docker", "exec", "-e", "PGPASSWORD", f"{stack.project}-postgres-1"]
    conn_args = ["-h", "127.0.0.1", "-U", "postgres"]
    env = {**os.environ, "PGPASSWORD": password}

    def run(*command: str) -> None:
        subprocess.run([*pg, *command], env=env, check=True, capture_output=True)

    run("pg_dump", "-Fc", "-f", DUMP, *conn_args, "-d", "devkit_bound")

    def data_only() -> str:
        sql("TRUNCATE " + ", ".join(tables), "devkit_bound")
        run(*PG_RESTORE, *conn_args, "-d", "devkit_bound", DUMP)
        return "devkit_bound"

    def fresh(*options: str) -> str:
        sql("DROP DATABASE IF EXISTS devkit_bound_fresh")
        run("createdb", *conn_args, "devkit_bound_fresh")
        run("pg_restore", *options, *conn_args, "-d", "devkit_bound_fresh", DUMP)
        return "devkit_bound_fresh"

    ways = {
        "data-only": data_only,
        "fresh -j 2": lambda: fresh("-j", "2"),
        "fresh, one transaction": lambda: fresh("--single-transaction"),
    }
    times: dict[str, list[float]] = {way: [] for way in ways}
    try:
        for round_ in range(args.rounds):
            for way, restore in ways.items():  # interleaved: a noisy neighbour hits each way
                started = time.perf_counter()
                database = restore()
                times[way].append(time.perf_counter() - started)
                if checksums(f"{server}/{database}", tables) != original:
                    sys.exit(f"{way}: the restored rows differ from the original")
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{way} {spent[-1]:.2f}s" for way, spent in times.items())
            )
    finally:
        for name in ("devkit_bound", "devkit_bound_fresh"):
            sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        subprocess.run([*pg, "rm", "-f", DUMP], env=env, check=False)
    base = statistics.median(times["data-only"])
    print(f"dataset: {described}; {args.rounds} rounds, medians")
    for way, spent in times.items():
        median = statistics.median(spent)
        print(f"{way:24} {median:.2f}s  {median / base:.2f} x data-only")


if __name__ == "__main__":
    main()
