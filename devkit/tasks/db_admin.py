"""db.psql and db.reset: the everyday chores that reach into the stack itself."""

from __future__ import annotations

from invoke import Exit, task

from devkit.errors import CommandFailed
from devkit.tasks._cli import confirm, local_stack, reports_errors


@task(help={"command": 'Run one SQL command (-c "SELECT …") instead of a session'})
@reports_errors
def psql(c, command=None):
    """psql in the PostgreSQL container as the app user on the app database: a session with line
    editing on a terminal, one command with -c, or SQL piped in."""
    from devkit.shells import PSQL_SCRIPT_ERROR, psql_argv, run

    stack = local_stack(c, "db.psql", 'for that one: psql "$DATABASE_URL"')
    code = run(stack, "postgres", psql_argv(stack, command))
    if code == PSQL_SCRIPT_ERROR:
        raise CommandFailed(
            "the SQL stopped at its first failing statement (psql's message is above); "
            "the statements before it were applied",
            "correct that statement and run the rest again",
        )
    if code:
        raise Exit(code=code)


@task(
    help={
        "yes": "Do not ask (required without a terminal)",
        "no-backup": "Skip the backup taken first",
    }
)
@reports_errors
def reset(c, yes=False, no_backup=False):
    """Start over: back up, remove this project's volumes, start, migrate, seed."""
    from devkit.alembic_api import has_migrations, migrate_app
    from devkit.backup.files import backup_dir
    from devkit.reset import reset as start_over
    from devkit.snapshots import forget_redis_copies, snapshots_before_reset

    stack = local_stack(c, "db.reset")
    # The snapshots live in the volume the reset deletes: named before anything is asked.
    doomed, unknown = snapshots_before_reset(stack)
    also = f", and its snapshots {', '.join(s.name for s in doomed)}" if doomed else ""
    if unknown:
        also = f", and any snapshots (they could not be listed: {unknown})"
    confirm(
        yes,
        "reset deletes the database and Redis data" + (" and the snapshots" if also else ""),
        f"Delete all data of {stack.pg_database} and Redis (project {stack.project}){also}"
        + ("" if no_backup else ", after a backup")
        + "?",
    )
    if doomed:
        print(f"The reset also deletes the snapshots: {', '.join(s.name for s in doomed)}")
    elif unknown:
        print(f"The reset also deletes any snapshots; they could not be listed: {unknown}")

    def migrate() -> str | None:
        if not has_migrations(stack.env_file.parent):
            return None
        run = migrate_app(c.config.devkit, "head", "up", backup=False, stack=stack)
        return ",".join(run.after) or "base"

    result = start_over(stack, None if no_backup else backup_dir(c.config.devkit), migrate)
    forget_redis_copies(doomed)
    print(
        f"Migrated to {result.migrated_to}"
        if result.migrated_to
        else "No migrations (no alembic.ini)"
    )
    print("Seeded (seed.py)" if result.seeded else "No seed step (no seed.py)")
    print("Reset done.")


TASKS = (psql, reset)
