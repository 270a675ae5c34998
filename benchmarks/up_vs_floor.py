"""Benchmark (run by hand): warm `devkit up` against the floor, and a second `devkit setup`.

Floor: `docker compose start`, then a tight loop until PostgreSQL answers an authenticated
SELECT 1 and Redis an authenticated PING (clients already imported, no sleep).
Kit: `devkit up` as a user runs it in the app's directory (a new process, its imports
included), after `devkit down`.
Both start from the same state: containers created and stopped, data volumes in place.

    .venv/bin/python benchmarks/up_vs_floor.py [--rounds 10] [--skip-setup] [--app-dir DIR]

Uses the stack of the app (default: the last one set up; run `devkit setup` first).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devkit.compose import compose_command  # noqa: E402
from devkit.envfile import load_stack  # noqa: E402
from devkit.settings.table import DEFAULTS  # noqa: E402

DEVKIT = str(Path(sys.executable).with_name("devkit"))


def both_answer(stack) -> bool:
    """The floor's own minimal check (SELECT 1, PING), independent of the kit's readiness code."""
    try:
        conn = psycopg2.connect(
            host=stack.host,
            port=stack.pg_port,
            user=stack.pg_user,
            password=stack.pg_password,
            dbname=stack.pg_database,
            connect_timeout=1,
        )
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.close()
        client = redis.Redis(
            host=stack.host,
            port=stack.redis_port,
            password=stack.redis_password,
            socket_connect_timeout=1,
        )
        client.ping()
        client.close()
        return True
    except (psycopg2.OperationalError, redis.RedisError):
        return False


def floor_once(stack) -> float:
    subprocess.run(compose_command(stack.env_file, "stop"), check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run(compose_command(stack.env_file, "start"), check=True, capture_output=True)
    while not both_answer(stack):
        pass
    return time.perf_counter() - started


def kit_once(app: Path) -> float:
    subprocess.run([DEVKIT, "down"], cwd=app, check=True, capture_output=True)
    started = time.perf_counter()
    subprocess.run([DEVKIT, "up"], cwd=app, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--skip-setup", action="store_true", help="do not time a second setup")
    parser.add_argument("--app-dir", default="", help="the app (default: the last one set up)")
    args = parser.parse_args()

    stack = load_stack({**DEFAULTS, "app_dir": args.app_dir})
    app = stack.env_file.parent
    floor, kit = [], []
    for _ in range(args.rounds):  # interleaved, so drift in machine load hits both alike
        floor.append(floor_once(stack))
        kit.append(kit_once(app))
    f, k = statistics.median(floor), statistics.median(kit)
    print(f"rounds: {args.rounds}")
    print(
        f"floor  (compose start + tight connect loop): median {f:.3f}s  min {min(floor):.3f}s  max {max(floor):.3f}s"
    )
    print(
        f"devkit up (new process, until both answer):  median {k:.3f}s  min {min(kit):.3f}s  max {max(kit):.3f}s"
    )
    print(f"ratio (median kit / median floor): {k / f:.2f}  (target <= 1.3)")

    if not args.skip_setup:
        started = time.perf_counter()
        result = subprocess.run(
            [DEVKIT, "setup"], cwd=app, check=True, capture_output=True, text=True
        )
        changed = next(line for line in result.stdout.splitlines() if "Ansible:" in line)
        print(f"second setup: {time.perf_counter() - started:.1f}s  ({changed.strip()})")


if __name__ == "__main__":
    main()
