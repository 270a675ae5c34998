"""Benchmark (run by hand): what the superuser boundary (issue 34) costs. The previous kit (a git
worktree of --base, the commit before it) restores as the cluster's admin and reads the
migration version as the admin; this kit restores on the app's own login (granted SET on
session_replication_role) with search_path pinned, and reads the version as the app.

A throwaway app is set up by this kit as a user does it (`devkit setup --no-vscode
--no-migrate` in a new directory), its database gets the dataset of backup_vs_pg_dump.py (1.5
million rows: customers 100k, orders 600k, order_items 800k), and one kit backup of it is made.
Each round, interleaved, times as the user waits for them: `db.restore FILE --yes --no-backup`
into the emptied tables, then `db.snapshot` and `db.snapshot.restore`, by the previous kit and by
this one, in alternating order. The app and its stack are removed at the end.

    .venv/bin/python benchmarks/boundary_cost.py [--rounds 5] [--base e6158a1]
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

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from backup_vs_pg_dump import SCHEMA, TABLES, checksums  # noqa: E402

from devkit.envfile import read_env_file  # noqa: E402


def kit(root: Path, *args: str, app: Path) -> tuple[float, str]:
    """`devkit ARGS` of the kit in ROOT (its modules first on the path), timed."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "devkit.cli", *args],
        cwd=app, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{root}: devkit {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--base", default="e6158a1", help="the previous kit's commit")
    args = parser.parse_args()
    from devkit.paths import STATE_FILE

    remembered = STATE_FILE.read_bytes() if STATE_FILE.exists() else None  # setup changes it
    scratch = Path(tempfile.mkdtemp(prefix="devkit-bench-boundary-"))
    old = scratch / "previous-kit"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(old), args.base],
        capture_output=True, check=True,
    )  # fmt: skip
    app = scratch / "benchapp"
    app.mkdir()
    kits = {"previous": old, "this": ROOT}
    project = ""
    try:
        kit(ROOT, "setup", "--no-vscode", "--no-migrate", app=app)
        values = read_env_file(app / ".env.local")
        project, url = values["DEVKIT_PROJECT_NAME"], values["DATABASE_URL_SYNC"]
        conn = psycopg2.connect(url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(SCHEMA)
            cur.execute("VACUUM ANALYZE")
        original = checksums(url)
        _, out = kit(ROOT, "db.backup", "--output-dir", str(scratch), app=app)
        backup = out.strip().splitlines()[-1]
        runs: dict[str, list[float]] = {
            f"{what} {who}": []
            for what in ("restore", "snapshot", "snapshot.restore")
            for who in kits
        }
        for round_ in range(args.rounds):
            order = list(kits) if round_ % 2 == 0 else list(reversed(kits))
            for who in order:
                with conn.cursor() as cur:
                    cur.execute("TRUNCATE " + ", ".join(TABLES))
                seconds, _ = kit(kits[who], "db.restore", backup, "--yes", "--no-backup", app=app)
                runs[f"restore {who}"].append(seconds)
                assert checksums(url) == original, f"{who}: the restore differs"
                name = f"bench-{who}-{round_}"
                seconds, _ = kit(kits[who], "db.snapshot", "--name", name, app=app)
                runs[f"snapshot {who}"].append(seconds)
                seconds, out = kit(kits[who], "db.snapshot.restore", name, "--yes", app=app)
                runs[f"snapshot.restore {who}"].append(seconds)
                undo = out.split("to undo: devkit db.snapshot.restore ", 1)[1].split()[0]
                conn.close()
                conn = psycopg2.connect(url)  # the swap ended the session
                conn.autocommit = True
                kit(ROOT, "db.snapshot.drop", undo, "--yes", app=app)
                kit(ROOT, "db.snapshot.drop", name, "--yes", app=app)
            print(
                f"round {round_ + 1}: "
                + ", ".join(f"{key} {values[-1]:.2f}s" for key, values in runs.items()),
                flush=True,
            )
        conn.close()
        med = {key: statistics.median(values) for key, values in runs.items()}
        print(f"dataset: 1,500,000 rows in {', '.join(TABLES)}; {args.rounds} rounds, medians")
        for what in ("restore", "snapshot", "snapshot.restore"):
            before, after = med[f"{what} previous"], med[f"{what} this"]
            print(f"db.{what:<17} previous {before:.2f}s  this {after:.2f}s  "
                  f"change {100 * (after / before - 1):+.1f}% (target within 5%)")  # fmt: skip
    finally:
        if project:
            subprocess.run(
                ["docker", "compose", "-p", project, "down", "--volumes"], capture_output=True
            )
            (Path.home() / f".local/state/devkit/stacks/{project}.admin.env").unlink(
                missing_ok=True
            )
            shutil.rmtree(
                Path.home() / ".local/state/devkit/snapshots" / project, ignore_errors=True
            )
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
            capture_output=True,
        )
        shutil.rmtree(scratch, ignore_errors=True)
        if remembered is None:
            STATE_FILE.unlink(missing_ok=True)
        else:
            STATE_FILE.write_bytes(remembered)


if __name__ == "__main__":
    main()
