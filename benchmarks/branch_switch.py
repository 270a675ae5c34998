"""Benchmark (run by hand): the database following the git branch (issue 29's targets).

A throwaway git repository holds a copy of the sample app, set up by this kit as a user does it
(`devkit setup --no-vscode`, which installs the post-checkout hook). Its database is filled to
each SIZE (a table of 1 KiB rows stored inline, uncompressed), then:

- first switch: `git switch -c b-SIZE-N` from main (the hook copies the database at file level
  for the branch left, and migrates the new one), against `CREATE DATABASE … TEMPLATE … STRATEGY
  FILE_COPY` of the same database alone plus the migrations alone (`alembic upgrade head` through
  the kit, in a process of its own, nothing left to apply), in ROUNDS interleaved rounds (which
  goes first alternates; a CHECKPOINT before each), medians: the issue's target is at most 1.2
  times that;
- switch: `git switch` between two branches that both have a database, timed from the command's
  start to the first answered query on the new branch's database (`git switch` returns after its
  hook), in ROUNDS alternating directions; medians (target ≤ 0.5 s, flat in size);
- the checkouts that must switch nothing (the same branch, a file checkout): counted.

    .venv/bin/python benchmarks/branch_switch.py [--sizes 100,1000] [--rounds 9]

The repository, its stack and the kit's state for it are removed at the end.
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
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

# Importing the suite's conftest sends what setup remembers and links to a directory of this
# run's (DEVKIT_STATE_FILE, DEVKIT_BIN_DIR: devkit/paths.py), never the user's.
from conftest import remove_app_stack  # noqa: E402

from devkit.envfile import read_env_file  # noqa: E402
from devkit.paths import SAMPLE_APP  # noqa: E402

DEVKIT = str(Path(sys.executable).with_name("devkit"))


def git(app: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", *args],
        cwd=app, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"git {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout + done.stderr


def answered(url: str) -> None:
    conn = psycopg2.connect(url, connect_timeout=5)
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    conn.close()


def timed_switch(app: Path, url: str, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    said = git(app, "switch", *args)
    answered(url)
    return time.perf_counter() - started, said


def fill(url: str, megabytes: int) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_rows")
        cur.execute("CREATE TABLE bench_rows (id int PRIMARY KEY, payload text)")
        cur.execute("ALTER TABLE bench_rows ALTER payload SET STORAGE EXTERNAL")
        cur.execute(
            "INSERT INTO bench_rows SELECT g, repeat(md5(g::text), 31) "
            "FROM generate_series(1, %s) g",
            (megabytes * 1024,),
        )
        cur.execute("SELECT pg_database_size(current_database())")
        size = cur.fetchone()[0]
    conn.close()
    print(f"  database filled: {size / 2**20:.0f} MiB", flush=True)


def file_copy_alone(app: Path) -> float:
    """CREATE DATABASE … STRATEGY FILE_COPY of the app's database as the kit's admin, alone."""
    from devkit import snapshot_catalog as catalog
    from devkit.envfile import stack_of

    stack = stack_of(app / ".env.local", read_env_file(app / ".env.local"))
    with catalog.admin_cursor(stack) as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (stack.pg_database,))  # fmt: skip
        started = time.perf_counter()
        cur.execute('CREATE DATABASE "bench_copy" TEMPLATE "app_db" STRATEGY FILE_COPY')
        seconds = time.perf_counter() - started
        cur.execute('DROP DATABASE "bench_copy"')
    return seconds


def checkpoint(app: Path) -> None:
    from devkit import snapshot_catalog as catalog
    from devkit.envfile import stack_of

    stack = stack_of(app / ".env.local", read_env_file(app / ".env.local"))
    with catalog.admin_cursor(stack) as cur:
        cur.execute("CHECKPOINT")


def migrations_alone(app: Path) -> float:
    """What the switch's migration step costs on its own: `alembic upgrade head` through the
    kit's API (Alembic and the app's env.py imported, nothing left to apply), in a fresh
    process as the hook's is."""
    script = (
        "import sys, time; t = time.perf_counter()\n"
        "from devkit.alembic_api import migrate_app\n"
        "from devkit.envfile import read_env_file, stack_of\n"
        "from pathlib import Path\n"
        "app = Path(sys.argv[1]); env = app / '.env.local'\n"
        "migrate_app({'app_dir': str(app)}, 'head', 'up', False, stack_of(env, read_env_file(env)))\n"
        "print(time.perf_counter() - t)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(app)], capture_output=True,
                          text=True, check=True, cwd=ROOT)  # fmt: skip
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="database sizes, MiB")
    parser.add_argument("--rounds", type=int, default=9, help="switches per size (medians)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="devkit-bench-branches-"))
    top = scratch / "repo"
    app = top / "app"
    shutil.copytree(
        SAMPLE_APP, app, ignore=shutil.ignore_patterns(".env.local", ".vscode", "backups")
    )
    git(top.parent, "-C", str(top), "init", "-q", "-b", "main")
    git(app, "add", "-A")
    git(app, "commit", "-q", "-m", "app")
    try:
        done = subprocess.run([DEVKIT, "setup", "--no-vscode"], cwd=app, capture_output=True,
                              text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            sys.exit(done.stdout[-3000:] + done.stderr)
        url = read_env_file(app / ".env.local")["DATABASE_URL_SYNC"]
        for size in [int(s) for s in args.sizes.split(",")]:
            print(f"{size} MiB", flush=True)
            git(app, "switch", "-q", "main")
            fill(url, size)
            firsts, bases = [], []
            for n in range(args.rounds):  # interleaved: which goes first alternates
                for step in ("first", "base") if n % 2 == 0 else ("base", "first"):
                    checkpoint(app)  # neither pays for the other's dirty pages
                    if step == "base":
                        bases.append(file_copy_alone(app) + migrations_alone(app))
                        continue
                    first, said = timed_switch(app, url, "-c", f"b-{size}-{n}")
                    assert "new database" in said, said
                    firsts.append(first)
                    git(app, "switch", "-q", "main")
                    git(app, "branch", "-q", "-D", f"b-{size}-{n}")
                    subprocess.run([DEVKIT, "branches.prune", "--yes"], cwd=app,
                                   capture_output=True, check=False)  # fmt: skip
            first, base = statistics.median(firsts), statistics.median(bases)
            print(f"  first switch median {first:.2f} s (min {min(firsts):.2f}, max "
                  f"{max(firsts):.2f}); FILE_COPY alone + the migrations alone, median "
                  f"{base:.2f} s; ratio {first / base:.2f}", flush=True)  # fmt: skip
            git(app, "switch", "-q", "-c", f"b-{size}")
            times = []
            for n in range(args.rounds):
                target = "main" if n % 2 == 0 else f"b-{size}"
                seconds, said = timed_switch(app, url, target)
                assert "in place" in said, said
                times.append(seconds)
            print(f"  switch median {statistics.median(times):.3f} s "
                  f"(min {min(times):.3f}, max {max(times):.3f}, {len(times)} switches)")  # fmt: skip
            quiet = [git(app, "switch", "main"), git(app, "checkout", "main", "--", "alembic.ini")]
            noticed = sum("database" in said for said in quiet)
            print(f"  switches noticed when nothing changes: {noticed}", flush=True)
            git(app, "branch", "-q", "-D", f"b-{size}")
            subprocess.run([DEVKIT, "branches.prune", "--yes"], cwd=app, capture_output=True,
                           check=False)  # fmt: skip
    finally:
        remove_app_stack(app)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    os.environ.pop("INVOKE_DEVKIT_APP_DIR", None)
    main()
