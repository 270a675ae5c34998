"""db.reset (`docker compose down -v` made safe): back up PostgreSQL (pg_dump, schema and data)
and Redis (RDB), remove this project's volumes only, start, wait, migrate, seed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devkit.compose import run_compose
from devkit.envfile import Stack, subprocess_environ
from devkit.errors import CommandFailed

SEED_SCRIPT = "seed.py"


@dataclass
class ResetResult:
    backup: Path | None  # PostgreSQL: pg_dump's custom format, schema and data
    redis_backup: Path | None  # Redis: an RDB file
    migrated_to: str | None
    seeded: bool


def reset(
    stack: Stack,
    backup_dir: Path | None,
    migrate: Callable[[], str | None],
    say: Callable[[str], None] = print,
) -> ResetResult:
    from devkit.lifecycle import up

    backup = redis_backup = None
    if backup_dir is not None:
        from devkit.backup import pgdump, redis_rdb

        up(stack)  # a backup needs the servers; starting them is quick when they run already
        # A full copy of what the reset destroys: every object with its data (tables the
        # migrations do not know included), and Redis's keys; outside the volumes it deletes.
        backup = pgdump.dump(stack, backup_dir)
        redis_backup = redis_rdb.snapshot(stack, backup_dir)
        say(f"Backup first: {backup} (PostgreSQL, schema and data), {redis_backup} (Redis)")
        say(
            f"  to get the data back: devkit db.restore {backup} --yes && "
            f"devkit redis.restore {redis_backup} --yes"
        )
    say(f"Removing the containers and volumes of project {stack.project} (nothing else)...")
    run_compose(stack.env_file, "down", "--volumes")
    # A new cluster has its admin only: the app's role is made as setup makes it, then `up`
    # waits until the app's credentials are accepted.
    from devkit.dbroles import ensure_stack_roles

    run_compose(stack.env_file, "up", "--detach", "--pull", "never")
    ensure_stack_roles(stack)
    result = up(stack)
    say(
        f"Started fresh: postgres {result.versions['postgres']}, redis {result.versions['redis']} "
        f"({result.seconds:.1f}s)"
    )
    migrated = migrate()
    seeded = run_seed(stack)
    return ResetResult(backup, redis_backup, migrated, seeded)


def run_seed(stack: Stack) -> bool:
    """The app's seed step (seed.py in its directory), with its .env.local in the environment."""
    app_dir = stack.env_file.parent
    script = app_dir / SEED_SCRIPT
    if not script.is_file():
        return False
    env = subprocess_environ() | stack.values | {"PYTHONPATH": str(app_dir)}
    done = subprocess.run([sys.executable, str(script)], cwd=app_dir, env=env, check=False)
    if done.returncode != 0:
        raise CommandFailed(
            f"{script} failed (exit {done.returncode}); the database is migrated but not seeded",
            f"fix the seed step and run it again: cd {app_dir} && python {SEED_SCRIPT}",
        )
    return True
