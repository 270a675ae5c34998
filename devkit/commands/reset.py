"""db.reset's use case: start the app's data over (migrated and seeded), with an undo.

By default the volumes stay: the app's database is set aside as an automatic snapshot (renamed,
nothing copied: devkit/snapshots.py) with Redis's keys, an empty one takes its place, then the
migrations and the seed step run. `db.snapshot.restore` puts it all back in about a second.

`--volumes` is `docker compose down -v` made safe, for a server that will not start or data
files that must go: PostgreSQL is backed up (pg_dump, schema and data) and Redis (RDB) first,
outside the volumes, then this project's volumes are removed (the snapshots with them), and the
stack starts fresh.

`prepare` checks the flags and, for `--volumes`, lists the snapshots that go with the volume
(the task names them in its question); `run` does it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devkit.compose import run_compose
from devkit.envfile import Stack, subprocess_environ
from devkit.errors import BadArgument, CommandFailed, DevkitError

SEED_SCRIPT = "seed.py"


@dataclass(frozen=True)
class ResetOptions:
    volumes: bool = False  # remove the volumes too (backs up to files first)
    backup: bool = False  # also back up to files first
    no_backup: bool = False  # keep nothing first

    @property
    def to_files(self) -> bool:
        return (self.volumes or self.backup) and not self.no_backup


@dataclass
class ResetPlan:
    stack: Stack
    options: ResetOptions
    doomed: list  # the snapshots --volumes deletes with the volume
    unknown: str  # why they could not be listed ("" when they were)


def prepare(config, options: ResetOptions) -> ResetPlan:
    """A reset of the app's stack as asked; BadArgument for contradicting flags, DataConflict
    when DATABASE_URL names another database. With --volumes, the snapshots that go with the
    volume are listed (the stack is started to ask it: the reset starts it anyway)."""
    from devkit.backup.target import check_local, resolve_target
    from devkit.envfile import load_stack

    if options.no_backup and options.backup:
        raise BadArgument(
            "--no-backup and --backup contradict each other",
            "give one: --backup also backs up to files, --no-backup keeps nothing",
        )
    stack = load_stack(config)
    check_local(stack, resolve_target(config), "db.reset")
    doomed, unknown = [], ""
    if options.volumes:
        from devkit.lifecycle import up
        from devkit.snapshots import list_snapshots

        try:
            up(stack)
            doomed = list_snapshots(stack)
        except DevkitError as exc:
            unknown = exc.cause
    return ResetPlan(stack, options, doomed, unknown)


def run(config, plan: ResetPlan, say: Callable[[str], None] = print) -> ResetResult:
    """The reset `plan` describes, with the app's migrations run to head and its seed step."""
    from devkit.alembic_api import has_migrations, migrate_app
    from devkit.backup.files import backup_dir
    from devkit.settings import setting
    from devkit.snapshot_redis import forget_redis_copies

    stack, options = plan.stack, plan.options

    def migrate() -> str | None:
        if not has_migrations(stack.env_file.parent):
            return None
        done = migrate_app(config, "head", "up", backup=False, stack=stack)
        return ",".join(done.after) or "base"

    result = reset(
        stack,
        backup_dir(config) if options.to_files else None,
        migrate,
        say,
        volumes=options.volumes,
        keep=not options.no_backup,
        snapshot_keep=setting(config, "snapshot_keep"),
    )
    forget_redis_copies(stack, plan.doomed)
    return result


@dataclass
class ResetResult:
    backup: Path | None  # PostgreSQL: pg_dump's custom format, schema and data
    redis_backup: Path | None  # Redis: an RDB file
    snapshot: str  # the automatic snapshot holding the data as it was ("" for none)
    migrated_to: str | None
    seeded: bool


def reset(
    stack: Stack,
    backup_dir: Path | None,
    migrate: Callable[[], str | None],
    say: Callable[[str], None] = print,
    volumes: bool = False,
    keep: bool = True,
    snapshot_keep: int = 0,
) -> ResetResult:
    """Start over (see the module). `backup_dir`: back up to files there first; `keep`: keep the
    data as a snapshot (not with `volumes`); `snapshot_keep`: the automatic snapshots kept."""
    from devkit import snapshots
    from devkit.lifecycle import up

    backup = redis_backup = None
    if backup_dir is not None or not volumes:
        up(stack)  # a backup or a snapshot needs the servers; quick when they run already
    if backup_dir is not None:
        from devkit.backup import pgdump, redis_rdb

        # A full copy of what the reset deletes: every object with its data (tables the
        # migrations do not know included), and Redis's keys; outside the volumes.
        backup = pgdump.dump(stack, backup_dir)
        redis_backup = redis_rdb.snapshot(stack, backup_dir)
        say(f"Backup first: {backup} (PostgreSQL, schema and data), {redis_backup} (Redis)")
        say(
            f"  to get the data back: devkit db.restore {backup} --yes && "
            f"devkit redis.restore {redis_backup} --yes"
        )
    snapshot = ""
    if volumes:
        say(f"Removing the containers and volumes of project {stack.project} (nothing else)...")
        run_compose(stack.env_file, "down", "--volumes")
        # A new cluster has its admin only: the app's role is made as setup makes it, then
        # `up` waits until the app's credentials are accepted.
        from devkit.dbroles import ensure_stack_roles

        run_compose(stack.env_file, "up", "--detach", "--pull", "never")
        ensure_stack_roles(stack)
        result = up(stack)
        versions = ", ".join(f"{name} {version}" for name, version in result.versions.items())
        say(f"Started fresh: {versions} ({result.seconds:.1f}s)")
    else:
        aside = snapshots.set_aside(stack, "db.reset", say)
        if keep:
            snapshot = aside.name
            say(f"Kept first: snapshot {snapshot} (the database as it was, and Redis's keys)")
            say(f"  to get the data back: devkit db.snapshot.restore {snapshot} --yes")
        else:
            snapshots.drop(stack, aside.name)
        say(f"Started fresh: an empty {stack.pg_database}, and Redis without keys")
    try:
        migrated = migrate()
        seeded = run_seed(stack)
    except DevkitError as exc:
        if snapshot:
            exc.hint += f"; the data as it was: devkit db.snapshot.restore {snapshot} --yes"
        raise
    if snapshot:  # older undo points go only once this reset has succeeded
        snapshots.prune_automatic(stack, snapshot_keep, say)
    return ResetResult(backup, redis_backup, snapshot, migrated, seeded)


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
