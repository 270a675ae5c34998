"""db.psql and db.reset: the everyday chores that reach into the stack itself."""

from __future__ import annotations

from invoke import Exit, task

from devkit.errors import CommandFailed
from devkit.tasks._cli import confirm, follows_branch, local_stack, of_app, reports_errors


@task(
    iterable=["command"],
    help={"command": 'Run an SQL command (-c "SELECT …") instead of a session; repeat -c for more'},
)
@reports_errors
@follows_branch
def psql(c, command=None):
    """Open psql on the app's database as the app's user, or run SQL with -c or piped in.

    A session with line editing on a terminal; commands with -c (each in turn, as psql runs
    them); or SQL piped in. psql runs in the PostgreSQL container."""
    from devkit.shells import PSQL_CONNECTION_FAILED, PSQL_SCRIPT_ERROR, psql_argv, run

    stack = local_stack(c, "db.psql", 'for that one: psql "$DATABASE_URL"')
    code = run(stack, "postgres", psql_argv(stack, list(command or []) or None))
    if code == PSQL_SCRIPT_ERROR:
        raise CommandFailed(
            "the SQL stopped at its first failing statement (psql's message is above); "
            "the statements before it were applied",
            "correct that statement and run the rest again",
        )
    if code == PSQL_CONNECTION_FAILED:
        from devkit.backup.session import connect
        from devkit.backup.target import stack_target

        connect(stack_target(stack.values)).close()  # says why, with the fix (a closed database)
    if code:
        raise Exit(code=code)


@task(
    help={
        "yes": "Do not ask (required without a terminal)",
        "no-backup": "Keep nothing first (no snapshot, no backup files)",
        "backup": "Also back up to files first (pg_dump and Redis's RDB), in the backup directory",
        "volumes": "Remove the project's volumes too (a server that will not start): backs up "
        "to files first, deletes the snapshots",
    }
)
@reports_errors
@follows_branch
def reset(c, yes=False, no_backup=False, backup=False, volumes=False):
    """Start the data over: keep it as a snapshot, empty the database and Redis, migrate, seed."""
    from devkit.commands import reset as use_case

    options = use_case.ResetOptions(volumes, backup, no_backup)
    plan = use_case.prepare(c.config.devkit, options)
    stack, doomed, unknown = plan.stack, plan.doomed, plan.unknown
    if volumes:
        # The snapshots live in the volume this deletes: named before anything is asked.
        also = f", and its snapshots {', '.join(s.name for s in doomed)}" if doomed else ""
        if unknown:
            also = f", and any snapshots (they could not be listed: {unknown})"
        confirm(
            yes,
            "reset --volumes deletes the database and Redis data"
            + (" and the snapshots" if also else ""),
            f"Delete all data of {of_app(stack, stack.pg_database + ' and Redis')} with "
            f"their volumes{also}"
            + (", after a backup to files" if options.to_files else "")
            + "?",
        )
        if doomed:
            print(f"The reset also deletes the snapshots: {', '.join(s.name for s in doomed)}")
        elif unknown:
            print(f"The reset also deletes any snapshots; they could not be listed: {unknown}")
    else:
        confirm(
            yes,
            "reset empties the database and Redis",
            f"Start {of_app(stack, stack.pg_database + ' and Redis')} over, empty"
            + (
                "? Nothing is kept"
                if no_backup
                else ", keeping what they hold as a snapshot"
                + (" and in backup files" if options.to_files else "")
                + "?"
            ),
        )
    result = use_case.run(c.config.devkit, plan)
    print(
        f"Migrated to {result.migrated_to}"
        if result.migrated_to
        else "No migrations (no alembic.ini)"
    )
    print("Seeded (seed.py)" if result.seeded else "No seed step (no seed.py)")
    print("Reset done.")


TASKS = (psql, reset)
