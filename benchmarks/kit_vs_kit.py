"""Benchmark (run by hand): this kit against a previous one (a git worktree of --base), timed as a
user waits for each command, in interleaved rounds (the two kits alternate which goes first),
medians. Issue 34 asked what the superuser boundary cost (base e6158a1: restore and snapshots);
issue 28 that setup, up and restore be no slower after the house was rebuilt (base 959dbda).

A throwaway app is set up by this kit as a user does it (`devkit setup --no-vscode
--no-migrate` in a new directory), its database gets the dataset of backup_vs_pg_dump.py (1.5
million rows: customers 100k, orders 600k, order_items 800k), and one kit backup of it is made.
Each round times, by each kit: a second `setup` (nothing to change), `up` (the stack running),
`db.restore FILE --yes --no-backup` into the emptied tables (checked row for row), then
`db.snapshot` and `db.snapshot.restore`. The app and its stack are removed at the end.

    .venv/bin/python benchmarks/kit_vs_kit.py [--rounds 5] [--base 959dbda]
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
from devkit.paths import state_dir  # noqa: E402

WHAT = ("setup", "up", "restore", "snapshot", "snapshot.restore")


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
    parser.add_argument("--base", default="959dbda", help="the previous kit's commit")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="devkit-bench-kits-"))
    # What this kit's setup remembers and links goes to the scratch directory (devkit/paths.py).
    os.environ["DEVKIT_STATE_FILE"] = str(scratch / "state.json")
    os.environ["DEVKIT_BIN_DIR"] = str(scratch / "bin")
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
        runs: dict[str, list[float]] = {f"{what} {who}": [] for what in WHAT for who in kits}
        for round_ in range(args.rounds):
            order = list(kits) if round_ % 2 == 0 else list(reversed(kits))
            for who in order:
                seconds, _ = kit(kits[who], "setup", "--no-vscode", "--no-migrate", app=app)
                runs[f"setup {who}"].append(seconds)
                seconds, _ = kit(kits[who], "up", app=app)
                runs[f"up {who}"].append(seconds)
                conn.close()
                conn = psycopg2.connect(url)  # setup may have restarted nothing, but be sure
                conn.autocommit = True
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
        for what in WHAT:
            before, after = med[f"{what} previous"], med[f"{what} this"]
            print(f"{what:<20} previous {before:.2f}s  this {after:.2f}s  "
                  f"change {100 * (after / before - 1):+.1f}%")  # fmt: skip
    finally:
        if project:
            subprocess.run(
                ["docker", "compose", "-p", project, "down", "--volumes"], capture_output=True
            )
            (state_dir() / f"stacks/{project}.admin.env").unlink(missing_ok=True)
            (state_dir() / f"env-backups/{project}.env.local.previous").unlink(missing_ok=True)
            shutil.rmtree(state_dir() / "snapshots" / project, ignore_errors=True)
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)],
            capture_output=True,
        )
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
