"""Benchmark (run by hand): `devkit db.pull` against `pg_dump -Fc` on the server plus
`pg_restore` on the laptop, unmasked (issue 30's targets).

The plain CI test host (tests/fleet: devkit-ci-1, provisioned by the kit with inventories/ci)
plays staging: 1.8 million rows over three tables with foreign keys (customers 400k with a name
and an e-mail, orders 600k, order_items 800k). This machine plays the laptop: a throwaway app
set up by the kit, the same tables, and rules masking the customers' names, e-mails and dates.

- pull: `devkit db.pull ci --host devkit-ci-1 --yes` (masked on the server, over SSH, restored,
  kept as a snapshot), its peak RSS (the devkit process, /usr/bin/time);
- baseline: `pg_dump -Fc` in the host's container to this machine over the same SSH, then
  `pg_restore --data-only --single-transaction --disable-triggers` into the laptop's database
  (emptied first);
after an untimed round of each (`--warmup`), interleaved ROUNDS (which goes first alternates),
medians. The host's rows are vacuumed once loaded, and before each timed step the laptop's
database is vacuumed and its server writes out what the step before left (a VACUUM and a
CHECKPOINT, not timed; `--dirty`: neither). Then the laptop is scanned for the customers' real
names and e-mails (its database, its backup directory, the kit's state).
With --subset-gb N the host's database is grown to N GB and a subset pulled (10 % of
order_items, what they reference).

    .venv/bin/python benchmarks/pull_vs_pg_dump.py [--rounds 5] [--warmup 1] [--subset-gb 2]

The hosts are left running for the next run (`python3 tests/fleet/testhosts.py down` removes
them); the laptop's app, its directory and its stack are removed at the end.
"""

from __future__ import annotations

import argparse
import gzip
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "fleet")]

# The suite's conftest sends what setup remembers to a directory of this run's.
from conftest import devkit, remove_app_stack  # noqa: E402

from devkit.envfile import read_env_file  # noqa: E402
from devkit.paths import state_dir  # noqa: E402

import testhosts  # noqa: E402

HOST = testhosts.PLAIN
VAULT = ["--vault-password-file", "inventories/ci/vault-password.txt"]
SCHEMA = """
CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL, email text UNIQUE,
  created timestamptz);
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers(id),
  total numeric(12,2), status text, created timestamptz);
CREATE TABLE order_items (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders(id),
  sku text, quantity int, price numeric(10,2), meta jsonb);
"""
ROWS = """
INSERT INTO customers SELECT g, 'Realname Person' || g, 'real.person' || g || '@corp.example',
  now() - g * interval '1 minute' FROM generate_series(1, 400000) g;
INSERT INTO orders SELECT g, 1 + g % 400000, (g % 10000) / 3.0,
  (ARRAY['new','paid','shipped'])[1 + g % 3], now() - g * interval '1 second'
  FROM generate_series(1, 600000) g;
INSERT INTO order_items SELECT g, 1 + g % 600000, 'SKU-' || (g % 5000), 1 + g % 5,
  (g % 1000) / 7.0, jsonb_build_object('gift', g % 7 = 0, 'note', 'n' || (g % 13))
  FROM generate_series(1, 800000) g;
ANALYZE;
"""
RULES = """\
tables:
  customers:
    id: keep
    name: {fake: name}
    email: {fake: email}
    created: {shift: 30}
  orders: {id: keep, customer_id: keep, total: keep, status: keep, created: keep}
  order_items: {id: keep, order_id: keep, sku: keep, quantity: keep, price: keep, meta: keep}
"""
ORIGINALS = ("Realname Person", "real.person")


def ssh(command: str, **kwargs) -> subprocess.CompletedProcess:
    options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR",
               "-o", "UserKnownHostsFile=/dev/null", "-i", str(testhosts.KEY)]  # fmt: skip
    return subprocess.run(
        ["ssh", *options, "-p", str(testhosts.HOSTS[HOST]), "root@127.0.0.1", command],
        check=False, **kwargs,
    )  # fmt: skip


def on_host(sql: str) -> None:
    done = ssh(f"cd /tmp && devkit db.psql -c {shlex.quote(sql)}", capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"on {HOST}: {done.stdout}{done.stderr}")


def timed(argv: list[str], cwd: Path) -> tuple[float, int, str]:
    """Wall seconds, the peak RSS (MB) of the process, and its output."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_DEVKIT_")}
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *argv], cwd=cwd, env=environ,
                          capture_output=True, text=True, check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{argv[:3]} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return seconds, int(done.stderr.strip().splitlines()[-1]) // 1024, done.stdout


def at_rest(app: Path) -> None:
    """VACUUM and CHECKPOINT the laptop's database before a timed step (not timed): each side
    starts from a database at rest, as a laptop's is between commands (autovacuum visits the
    1.8 M rows a load left within a minute or two, and its checkpointer writes what a command
    left within checkpoint_timeout). Without the CHECKPOINT, a pull that follows the baseline
    pays for writing out what pg_restore left dirty: the snapshot the pull keeps first is a
    file-level copy, which starts with a checkpoint. Without the VACUUM (until 2026-12-06,
    third session), the autovacuum the step before set off runs during the next one."""
    values = read_env_file(app / ".env.local")
    for sql in ("VACUUM", "CHECKPOINT"):
        subprocess.run(
            ["docker", "exec", "-u", "postgres", f"{values['DEVKIT_PROJECT_NAME']}-postgres-1",
             "psql", "-X", "-q", "-d", values["PGDATABASE"], "-c", sql],
            check=True, capture_output=True,
        )  # fmt: skip


def baseline(app: Path) -> float:
    """pg_dump -Fc on the host, over SSH, into a file here; pg_restore into the laptop's tables."""
    values = read_env_file(app / ".env.local")
    container = f"{values['DEVKIT_PROJECT_NAME']}-postgres-1"
    with psycopg2.connect(values["DATABASE_URL_SYNC"]) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE customers, orders, order_items")
    conn.close()
    with tempfile.NamedTemporaryFile(suffix=".dump") as dump:
        started = time.perf_counter()
        dumped = ssh("docker exec -u postgres devkit-postgres-1 pg_dump -Fc -d app_db",
                     stdout=dump)  # fmt: skip
        dump.flush()
        dump.seek(0)
        restored = subprocess.run(
            ["docker", "exec", "-i", "-u", "postgres", container, "pg_restore", "--data-only",
             "--single-transaction", "--disable-triggers", "-d", values["PGDATABASE"]],
            stdin=dump, capture_output=True, check=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    if dumped.returncode != 0 or restored.returncode != 0:
        sys.exit(f"baseline failed: {restored.stderr[-2000:]}")
    return seconds


def scan(app: Path) -> list[str]:
    """Where the customers' real names or e-mails are on the laptop (nowhere, we expect)."""
    values = read_env_file(app / ".env.local")
    found = []
    with psycopg2.connect(values["DATABASE_URL_SYNC"]) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM customers WHERE name LIKE 'Realname%%' OR email LIKE 'real.%%'"
        )
        if cur.fetchone()[0]:
            found.append("database")
    conn.close()
    for path in [*(app / "backups").glob("*.backup.gz"), *state_dir().rglob("*")]:
        if path.is_file():
            data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            found += [str(path) for o in ORIGINALS if o.encode() in data]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed rounds first (until 2026-12-06, third session: none; see benchmarks/README.md)",
    )
    parser.add_argument(
        "--subset-gb", type=float, default=0, help="also a subset of a source this big"
    )
    parser.add_argument(
        "--dirty",
        action="store_true",
        help="no VACUUM and CHECKPOINT before each step (until 2026-12-06: each step then starts "
        "with what the step before left unwritten and unvacuumed)",
    )
    args = parser.parse_args()
    testhosts.up()
    done = devkit("provision", "--inventory", "inventories/ci", *VAULT, "--limit", HOST,
                  cwd=ROOT, env={}, timeout=1800)  # fmt: skip
    if done.returncode != 0:
        sys.exit(done.stdout[-3000:] + done.stderr)
    on_host("DROP TABLE IF EXISTS order_items, orders, customers, big_items")
    on_host(SCHEMA + ROWS)
    # A staging server at rest: its rows vacuumed (hint bits set) as autovacuum leaves them.
    # Before 2026-12-06 (third session) the first step to read the new rows set them.
    on_host("VACUUM")
    app = Path(tempfile.mkdtemp(prefix="devkit-bench-pull-")) / "shop"
    app.mkdir()
    try:
        made = devkit("setup", "--no-vscode", cwd=app, env={}, timeout=900)
        if made.returncode != 0:
            sys.exit(made.stdout[-3000:] + made.stderr)
        with psycopg2.connect(read_env_file(app / ".env.local")["DATABASE_URL_SYNC"]) as conn:
            conn.cursor().execute(SCHEMA)
        conn.close()
        (app / "db-pull.yaml").write_text(RULES)
        pull = [
            str(ROOT / ".venv" / "bin" / "devkit"),
            "db.pull",
            "ci",
            "--host",
            HOST,
            "--yes",
            *VAULT,
        ]
        # A new app's first rounds: its cluster creates the WAL files a long-lived one recycles
        # (1.8 M rows write about 300 MB of WAL), and its first pull has no last pull to reach
        # the server by.
        for _ in range(args.warmup):
            at_rest(app)
            timed(pull, app)
            at_rest(app)
            baseline(app)
        pulls, bases, peaks = [], [], []
        for n in range(args.rounds):
            for step in ("pull", "base") if n % 2 == 0 else ("base", "pull"):
                if not args.dirty:
                    at_rest(app)
                if step == "pull":
                    seconds, peak, _ = timed(pull, app)
                    pulls.append(seconds)
                    peaks.append(peak)
                else:
                    bases.append(baseline(app))
            print(f"round {n + 1}: pull {pulls[-1]:.2f} s (peak {peaks[-1]} MB), "
                  f"pg_dump + pg_restore {bases[-1]:.2f} s", flush=True)  # fmt: skip
        timed(pull, app)  # the laptop ends with a pulled copy: scan it
        pull_s, base_s = statistics.median(pulls), statistics.median(bases)
        print(f"1.8 M rows, {args.rounds} rounds, medians: pull {pull_s:.2f} s, pg_dump -Fc + "
              f"pg_restore {base_s:.2f} s, ratio {pull_s / base_s:.2f} (target <= 1.3); "
              f"peak RSS {max(peaks)} MB (target <= 100)")  # fmt: skip
        print(f"the customers' real values found on the laptop: {scan(app) or 'none'}")
        if args.subset_gb:
            grow = (
                "CREATE TABLE big_items (id bigint PRIMARY KEY, order_id bigint NOT NULL "
                "REFERENCES orders(id), pad text); ALTER TABLE big_items ALTER pad SET STORAGE PLAIN; "
                f"INSERT INTO big_items SELECT g, 1 + g % 600000, repeat('x', 200) "
                f"FROM generate_series(1, {int(args.subset_gb * 4_200_000)}) g; ANALYZE big_items"
            )
            on_host(grow)
            with psycopg2.connect(read_env_file(app / ".env.local")["DATABASE_URL_SYNC"]) as conn:
                conn.cursor().execute(
                    "CREATE TABLE big_items (id bigint PRIMARY KEY, order_id bigint NOT NULL "
                    "REFERENCES orders(id), pad text)"
                )
            conn.close()
            (app / "db-pull.yaml").write_text(
                RULES + "  big_items: {id: keep, order_id: keep, pad: keep}\n"
                "subset:\n  root: big_items\n  percent: 10\n  children: 0\n"
            )
            seconds, peak, _ = timed(pull, app)
            size = ssh("cd /tmp && devkit db.psql -c \"SELECT pg_size_pretty(pg_database_size('app_db'))\"",
                       capture_output=True, text=True).stdout.split()  # fmt: skip
            print(f"subset of a {' '.join(size[2:4])} source (10 % of big_items and what it "
                  f"references): {seconds:.1f} s (target <= 60), peak {peak} MB")  # fmt: skip
            on_host("DROP TABLE big_items")
    finally:
        remove_app_stack(app)
        # Its backup directory holds the pulled (masked) copies.
        shutil.rmtree(app.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
