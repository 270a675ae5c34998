"""Benchmark (run by hand): `devkit db.snapshot` / `db.snapshot.restore` against pg_dump -Fc /
pg_restore --data-only --single-transaction --disable-triggers of the same data.

A throwaway app is set up as a user does it (`devkit setup --no-vscode --no-migrate` in a new
directory: a stack of its own), and its database gets backup_vs_pg_dump.py's datasets: `orders`
(1.5 million rows: customers 100k, orders 600k, order_items 800k; 172 MB), `text` (400k rows of
text with escapes), or `both` (the default: about the 366 MB of the issue's database). Rounds
are interleaved; each command's wall time is measured from this process, as the user waits for
it. pg_dump and pg_restore are the server's own, run in the postgres container.

The kit's ready copy of a snapshot (devkit.snapshot_spares) is made in the background after
`db.snapshot` and after `db.snapshot.restore`: before the next command is timed, this waits
until it is made (the machine quiet again, so that no command is timed beside it) and reports
how long it took after the command had returned. The app and its stack are removed at the end
(unless --keep).

    .venv/bin/python benchmarks/snapshot_vs_pg_restore.py [--rounds 5] [--dataset both] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from backup_vs_pg_dump import DATASETS, PG_RESTORE, checksums  # noqa: E402

from devkit.admin_password import read_admin_password  # noqa: E402
from devkit.envfile import read_env_file  # noqa: E402

DEVKIT = str(Path(sys.executable).with_name("devkit"))


def devkit(*args: str, app: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([DEVKIT, *args], cwd=app, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"devkit {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return seconds, done.stdout


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=True)
    return time.perf_counter() - started


def spare_made(url: str, database: str, name: str) -> float:
    """Seconds until snapshot NAME's ready copy exists and no copy is being made."""
    started = time.perf_counter()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        while True:
            cur.execute(
                "SELECT (SELECT count(*) FROM pg_database WHERE datname = %s), "
                "(SELECT count(*) FROM pg_stat_activity WHERE application_name = 'devkit-spare')",
                (f"{database}.spare.{name}",),
            )
            if cur.fetchone() == (1, 0):
                break
            if time.perf_counter() - started > 600:
                sys.exit(f"the ready copy of snapshot {name} was not made within 600 s")
            time.sleep(0.02)
    conn.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--keep", action="store_true", help="keep the app and its stack")
    parser.add_argument("--dataset", choices=["orders", "text", "both"], default="both")
    args = parser.parse_args()
    chosen = ["orders", "text"] if args.dataset == "both" else [args.dataset]
    schema = "".join(DATASETS[name][0] for name in chosen)
    tables = [table for name in chosen for table in DATASETS[name][1]]
    app = Path(tempfile.mkdtemp(prefix="devkit-bench-snap-")) / "benchapp"
    # What setup remembers and links goes beside the app (devkit/paths.py), not the user's.
    os.environ["DEVKIT_STATE_FILE"] = str(app.parent / "state.json")
    os.environ["DEVKIT_BIN_DIR"] = str(app.parent / "bin")
    app.mkdir()
    devkit("setup", "--no-vscode", "--no-migrate", app=app)
    values = read_env_file(app / ".env.local")
    project, port, database = values["DEVKIT_PROJECT_NAME"], values["PGPORT"], values["PGDATABASE"]
    password = read_admin_password(project)
    url = f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{port}/{database}"
    try:
        conn = psycopg2.connect(values["DATABASE_URL_SYNC"])
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(schema)
            cur.execute("VACUUM ANALYZE")
        conn.close()
        original = checksums(url, tables)
        pg = ["docker", "exec", "-e", "PGPASSWORD", f"{project}-postgres-1"]
        conn_args = ["-h", "127.0.0.1", "-U", "postgres", "-d", database]
        env = {**os.environ, "PGPASSWORD": password}
        runs: dict[str, list[float]] = {
            "snapshot": [], "dump": [], "restore": [], "pg_restore": [], "spare": []
        }  # fmt: skip
        for round_ in range(args.rounds):
            name = f"bench-{round_}"
            seconds, _ = devkit("db.snapshot", "--name", name, app=app)
            runs["snapshot"].append(seconds)
            runs["spare"].append(spare_made(url, database, name))
            runs["dump"].append(
                timed([*pg, "pg_dump", "-Fc", "-f", "/tmp/bench.dump", *conn_args], env)
            )
            admin = psycopg2.connect(url)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute("TRUNCATE " + ", ".join(tables))
            admin.close()
            seconds, out = devkit("db.snapshot.restore", name, "--yes", app=app)
            runs["restore"].append(seconds)
            runs["spare"].append(spare_made(url, database, name))
            assert checksums(url, tables) == original, (
                "the snapshot's restore differs from the original"
            )
            undo = out.split("to undo: devkit db.snapshot.restore ", 1)[1].split()[0]
            admin = psycopg2.connect(url)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute("TRUNCATE " + ", ".join(tables))
            admin.close()
            runs["pg_restore"].append(timed([*pg, *PG_RESTORE, *conn_args, "/tmp/bench.dump"], env))
            assert checksums(url, tables) == original, "pg_restore differs from the original"
            devkit("db.snapshot.drop", undo, "--yes", app=app)
            devkit("db.snapshot.drop", name, "--yes", app=app)
            print(
                f"round {round_ + 1}: snapshot {runs['snapshot'][-1]:.2f}s / pg_dump -Fc "
                f"{runs['dump'][-1]:.2f}s, snapshot.restore {runs['restore'][-1]:.2f}s / "
                f"pg_restore {runs['pg_restore'][-1]:.2f}s (ready copies made in the background "
                f"{runs['spare'][-2]:.2f}s, {runs['spare'][-1]:.2f}s)",
                flush=True,
            )
        med = {key: statistics.median(values) for key, values in runs.items()}
        size = psycopg2.connect(url)
        with size.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            megabytes = cur.fetchone()[0] / 1e6
        size.close()
        print(f"dataset: {args.dataset} ({', '.join(tables)}); database {megabytes:.0f} MB; "
              f"{args.rounds} rounds, medians")  # fmt: skip
        print(f"db.snapshot         {med['snapshot']:.2f}s  pg_dump -Fc {med['dump']:.2f}s  "
              f"ratio {med['snapshot'] / med['dump']:.2f} (target <= 0.2)")  # fmt: skip
        print(f"db.snapshot.restore {med['restore']:.2f}s  pg_restore {med['pg_restore']:.2f}s  "
              f"ratio {med['restore'] / med['pg_restore']:.2f} (target <= 0.1)")  # fmt: skip
        print(f"ready copy, made in the background after each command: {med['spare']:.2f}s")
    finally:
        if not args.keep:
            subprocess.run(
                ["docker", "compose", "-p", project, "down", "--volumes"], capture_output=True
            )
            (Path.home() / f".local/state/devkit/stacks/{project}.admin.env").unlink(
                missing_ok=True
            )
            shutil.rmtree(
                Path.home() / ".local/state/devkit/snapshots" / project, ignore_errors=True
            )
            shutil.rmtree(app.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
