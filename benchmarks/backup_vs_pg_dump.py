"""Benchmark (run by hand): `invoke db.backup` / `db.restore` against pg_dump -Fc / pg_restore.

Datasets, in a database `devkit_bench` of the current stack:
- orders: 1.5 million rows over three tables with foreign keys (customers 100k, orders 600k,
  order_items 800k);
- text: 400k rows of real-world text, every row with what JSON escapes: text with tabs, newlines,
  quotes and backslashes, Japanese text, a jsonb document holding the same, an array of text,
  bytea.
pg_dump and pg_restore are the server's own (16.x), run inside the postgres container over TCP
like the kit.

    .venv/bin/python benchmarks/backup_vs_pg_dump.py [--dataset orders|text] [--rounds 5] [--keep]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devkit.admin_password import read_admin_password  # noqa: E402
from devkit.envfile import Stack, load_stack  # noqa: E402
from devkit.settings.table import DEFAULTS  # noqa: E402

INVOKE = [str(Path(sys.executable).with_name("invoke")), "--search-root", str(ROOT)]
SCHEMA = """
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text, created timestamptz);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
                     total numeric(12,2), status text, created timestamptz);
CREATE TABLE order_items (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders(id),
                          sku text, quantity int, price numeric(10,2), meta jsonb);
INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com', now() - g * interval '1 minute'
  FROM generate_series(1, 100000) g;
INSERT INTO orders SELECT g, 1 + g % 100000, (g % 10000) / 3.0, (ARRAY['new','paid','shipped'])[1 + g % 3],
  now() - g * interval '1 second' FROM generate_series(1, 600000) g;
INSERT INTO order_items SELECT g, 1 + g % 600000, 'SKU-' || (g % 5000), 1 + g % 5, (g % 1000) / 7.0,
  jsonb_build_object('gift', g % 7 = 0, 'note', 'n' || (g % 13)) FROM generate_series(1, 800000) g;
"""
TEXT_SCHEMA = r"""
CREATE TABLE documents (id bigint PRIMARY KEY, title text, body text, doc jsonb, tags text[],
                        blob bytea);
INSERT INTO documents SELECT g,
  'タイトル ' || g || E'\t"quoted"',
  E'line one\tcolumn\nline two \\ a backslash, "a quote", 日本語のテキスト ' || g,
  jsonb_build_object('text', E'tab\there "q" \\ 漢字 ' || g, 'n', g,
                     'list', jsonb_build_array('a', E'b\tc')),
  ARRAY['tag' || (g % 10), 'with "quote"', E'back\\slash', '日本'],
  decode(md5(g::text), 'hex')
FROM generate_series(1, 400000) g;
"""
DATASETS = {
    "orders": (
        SCHEMA,
        ["customers", "orders", "order_items"],
        "1,500,000 rows (customers 100k, orders 600k, order_items 800k)",
    ),
    "text": (
        TEXT_SCHEMA,
        ["documents"],
        "400,000 rows of text with escapes in every row (documents)",
    ),
}
TABLES = DATASETS["orders"][1]
# Where the kit's files go: a flag, as a user types it (since 2026-12-06; was the setting
# INVOKE_DEVKIT_BACKUP_DIR, and a setting other than its default has every command validate
# all the settings with pydantic, about 65 ms).
BACKUPS = "/tmp/devkit-bench"
# The comparison for every restore: the data alone, in one transaction, without per-row triggers.
PG_RESTORE = ["pg_restore", "--data-only", "--single-transaction", "--disable-triggers"]


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in MB of the process, and its stdout."""
    started = time.perf_counter()
    result = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *command], capture_output=True, text=True, env=env, check=True
    )
    seconds = time.perf_counter() - started
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    return seconds, peak_kb // 1024, result.stdout


def checksums(url: str, tables: list[str] | None = None) -> dict[str, str]:
    conn = psycopg2.connect(url)
    out = {}
    with conn.cursor() as cur:
        for table in tables or TABLES:
            cur.execute(f"SELECT md5(string_agg(x::text, '|' ORDER BY x.id)) FROM {table} x")
            out[table] = cur.fetchone()[0]
    conn.close()
    return out


def admin_server() -> tuple[Stack, str, str]:
    """The current app's stack, its admin's password, and the server's URL (no database)."""
    stack = load_stack(DEFAULTS)
    password = read_admin_password(stack.project)
    if not password:
        sys.exit("no admin password kept for this stack: run `devkit setup` first")
    return (
        stack,
        password,
        f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{stack.pg_port}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the devkit_bench database")
    parser.add_argument(
        "--rounds", type=int, default=5, help="interleaved rounds (medians reported)"
    )
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="orders")
    args = parser.parse_args()
    global TABLES
    schema, TABLES, described = DATASETS[args.dataset]
    # The cluster's admin, as db.restore reaches the stack's own database (a superuser loads
    # without per-row triggers, like pg_restore --disable-triggers, which needs one too).
    stack, password, server = admin_server()
    admin = psycopg2.connect(f"{server}/postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS devkit_bench WITH (FORCE)")
        cur.execute("CREATE DATABASE devkit_bench")
    url = f"{server}/devkit_bench"
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(schema)
        cur.execute("VACUUM ANALYZE")
    original = checksums(url)
    container = f"{stack.project}-postgres-1"
    # The password reaches pg_dump/pg_restore through the environment, never a command line.
    pg = ["docker", "exec", "-e", "PGPASSWORD", container]
    conn_args = ["-h", "127.0.0.1", "-U", "postgres", "-d", "devkit_bench"]
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PGPASSWORD": password,
    }

    def truncate() -> None:
        with conn.cursor() as cur:
            cur.execute("TRUNCATE " + ", ".join(TABLES))

    runs: dict[str, list[float]] = {"backup": [], "dump": [], "restore": [], "pg_restore": []}
    peak = {"backup": 0, "restore": 0}
    for round_ in range(args.rounds):  # interleaved, so that a noisy neighbour hits both sides
        kit_s, kit_mb, out = timed([*INVOKE, "db.backup", "--output-dir", BACKUPS], env)
        kit_file = Path(out.strip().splitlines()[-1])
        dump_s, _, _ = timed([*pg, "pg_dump", "-Fc", "-f", "/tmp/bench.dump", *conn_args], env)
        runs["backup"].append(kit_s)
        runs["dump"].append(dump_s)
        peak["backup"] = max(peak["backup"], kit_mb)
        truncate()
        # --no-backup: the restore itself (by default a safety backup of the data it replaces
        # is taken first, which costs one db.backup more).
        kit_s, kit_mb, _ = timed(
            [*INVOKE, "db.restore", str(kit_file), "--yes", "--no-backup"], env
        )
        assert checksums(url) == original, "kit restore differs from the original"
        truncate()
        restore_s, _, _ = timed(
            [*pg, *PG_RESTORE, *conn_args, "/tmp/bench.dump"],
            env,
        )
        assert checksums(url) == original, "pg_restore differs from the original"
        runs["restore"].append(kit_s)
        runs["pg_restore"].append(restore_s)
        peak["restore"] = max(peak["restore"], kit_mb)
        print(
            f"round {round_ + 1}: backup {runs['backup'][-1]:.2f}s / pg_dump {dump_s:.2f}s, "
            f"restore {kit_s:.2f}s / pg_restore {restore_s:.2f}s",
            flush=True,
        )
        size = kit_file.stat().st_size
        kit_file.unlink()
    dump_size = int(
        subprocess.run(
            [*pg, "stat", "-c", "%s", "/tmp/bench.dump"], capture_output=True, text=True, check=True
        ).stdout
    )
    med = {key: statistics.median(values) for key, values in runs.items()}
    print(f"dataset: {described}; {args.rounds} rounds, medians")
    print(
        f"backup : kit {med['backup']:.2f}s  pg_dump -Fc {med['dump']:.2f}s  ratio {med['backup'] / med['dump']:.2f} (target <= 1.0)"
    )
    print(
        f"restore: kit {med['restore']:.2f}s  pg_restore {med['pg_restore']:.2f}s  ratio {med['restore'] / med['pg_restore']:.2f} (target <= 1.5)"
    )
    print(
        f"peak memory of the kit's process: backup {peak['backup']} MB, restore {peak['restore']} MB (target <= 100)"
    )
    print(
        f"file size: kit {size / 1e6:.1f} MB  pg_dump {dump_size / 1e6:.1f} MB  ratio {size / dump_size:.2f} (target <= 1.2)"
    )
    conn.close()
    if not args.keep:
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE devkit_bench WITH (FORCE)")
    admin.close()


if __name__ == "__main__":
    main()
