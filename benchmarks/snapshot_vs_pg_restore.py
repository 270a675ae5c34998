"""Benchmark (run by hand): `devkit db.snapshot` / `db.snapshot.restore` against pg_dump -Fc /
pg_restore --data-only --single-transaction --disable-triggers of the same data.

A throwaway app is set up as a user does it (`devkit setup --no-vscode --no-migrate` in a new
directory: a stack of its own), and its database gets the dataset of backup_vs_pg_dump.py (1.5
million rows: customers 100k, orders 600k, order_items 800k). Rounds are interleaved; each
command's wall time is measured from this process, as the user waits for it. pg_dump and
pg_restore are the server's own, run in the postgres container. The app and its stack are
removed at the end (unless --keep).

    .venv/bin/python benchmarks/snapshot_vs_pg_restore.py [--rounds 3] [--keep]
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

from backup_vs_pg_dump import PG_RESTORE, SCHEMA, TABLES, checksums  # noqa: E402

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--keep", action="store_true", help="keep the app and its stack")
    args = parser.parse_args()
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
            cur.execute(SCHEMA)
            cur.execute("VACUUM ANALYZE")
        conn.close()
        original = checksums(url)
        pg = ["docker", "exec", "-e", "PGPASSWORD", f"{project}-postgres-1"]
        conn_args = ["-h", "127.0.0.1", "-U", "postgres", "-d", database]
        env = {**os.environ, "PGPASSWORD": password}
        runs: dict[str, list[float]] = {"snapshot": [], "dump": [], "restore": [], "pg_restore": []}
        for round_ in range(args.rounds):
            name = f"bench-{round_}"
            seconds, _ = devkit("db.snapshot", "--name", name, app=app)
            runs["snapshot"].append(seconds)
            runs["dump"].append(
                timed([*pg, "pg_dump", "-Fc", "-f", "/tmp/bench.dump", *conn_args], env)
            )
            admin = psycopg2.connect(url)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute("TRUNCATE customers, orders, order_items")
            admin.close()
            seconds, out = devkit("db.snapshot.restore", name, "--yes", app=app)
            runs["restore"].append(seconds)
            assert checksums(url) == original, "the snapshot's restore differs from the original"
            undo = out.split("to undo: devkit db.snapshot.restore ", 1)[1].split()[0]
            admin = psycopg2.connect(url)
            admin.autocommit = True
            with admin.cursor() as cur:
                cur.execute("TRUNCATE customers, orders, order_items")
            admin.close()
            runs["pg_restore"].append(timed([*pg, *PG_RESTORE, *conn_args, "/tmp/bench.dump"], env))
            assert checksums(url) == original, "pg_restore differs from the original"
            devkit("db.snapshot.drop", undo, "--yes", app=app)
            devkit("db.snapshot.drop", name, "--yes", app=app)
            print(
                f"round {round_ + 1}: snapshot {runs['snapshot'][-1]:.2f}s / pg_dump -Fc "
                f"{runs['dump'][-1]:.2f}s, snapshot.restore {runs['restore'][-1]:.2f}s / "
                f"pg_restore {runs['pg_restore'][-1]:.2f}s",
                flush=True,
            )
        med = {key: statistics.median(values) for key, values in runs.items()}
        size = psycopg2.connect(url)
        with size.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            megabytes = cur.fetchone()[0] / 1e6
        size.close()
        print(f"dataset: 1,500,000 rows in {', '.join(TABLES)}; database {megabytes:.0f} MB; "
              f"{args.rounds} rounds, medians")  # fmt: skip
        print(f"db.snapshot         {med['snapshot']:.2f}s  pg_dump -Fc {med['dump']:.2f}s  "
              f"ratio {med['snapshot'] / med['dump']:.2f} (target <= 0.2)")  # fmt: skip
        print(f"db.snapshot.restore {med['restore']:.2f}s  pg_restore {med['pg_restore']:.2f}s  "
              f"ratio {med['restore'] / med['pg_restore']:.2f} (target <= 0.1)")  # fmt: skip
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
