"""db.migrate, db.downgrade, db.revision, db.current, db.history, db.merge-heads: the app's
Alembic migrations, through Alembic's API (devkit/alembic_api.py), with the database kept first
(a snapshot, or a backup file: devkit/safety_net.py) before any change."""

from __future__ import annotations

import sys

from invoke import task

from devkit.tasks._cli import follows_branch, reports_errors


def _report(run, direction: str) -> None:
    before = ",".join(run.before) or "base"
    after = ",".join(run.after) or "base"
    if not run.steps:
        print(f"Nothing to do: the database is at {after}.")
        return
    if run.kept:
        print(f"Kept first: {run.kept}", file=sys.stderr)
    for step in run.steps:
        print(f"  applied: {step}")
    print(f"Migrated {before} → {after} ({len(run.steps)} step(s)).")
    undo = (
        f"devkit db.downgrade {before}"
        if direction == "up"
        else f"devkit db.migrate --revision {before}"
    )
    print(f"To undo: {undo}", end="")
    if run.kept:
        print(f"; the data as it was: then {run.kept.undo()}", end="")
    print()


def _check_backup_flags(no_backup: bool, backup: bool) -> None:
    if no_backup and backup:
        from devkit.errors import BadArgument

        raise BadArgument(
            "--no-backup and --backup contradict each other",
            "give one: --backup keeps a backup file first, --no-backup keeps nothing",
        )


@task(
    help={
        "revision": "Target revision (default: head)",
        "no-backup": "Keep nothing first (no snapshot, no backup file)",
        "backup": "Keep a backup file first, not a snapshot",
    }
)
@reports_errors
@follows_branch
def migrate(c, revision="head", no_backup=False, backup=False):
    """Upgrade the database (alembic upgrade); keeps it first (a snapshot) when anything changes."""
    from devkit.alembic_api import migrate_app

    _check_backup_flags(no_backup, backup)
    run = migrate_app(c.config.devkit, revision, "up", backup=not no_backup, backup_file=backup)
    _report(run, "up")


@task(
    help={
        "revision": "Where to go: a revision id, -1 (one step back) or base",
        "no-backup": "Keep nothing first (no snapshot, no backup file)",
        "backup": "Keep a backup file first, not a snapshot",
    }
)
@reports_errors
@follows_branch
def downgrade(c, revision, no_backup=False, backup=False):
    """Downgrade the database (alembic downgrade REV); keeps it first (a snapshot)."""
    from devkit.alembic_api import migrate_app

    _check_backup_flags(no_backup, backup)
    run = migrate_app(c.config.devkit, revision, "down", backup=not no_backup, backup_file=backup)
    _report(run, "down")


@task(
    help={
        "message": "What the migration does (-m)",
        "autogenerate": "Compare the models with the database and write the operations",
    }
)
@reports_errors
@follows_branch
def revision(c, message, autogenerate=False):
    """Create a migration script (alembic revision -m MSG [--autogenerate])."""
    from devkit.alembic_api import app_of
    from devkit.alembic_api import revision as make

    app_dir, target = app_of(c.config.devkit)
    path = make(app_dir, target, message, autogenerate)
    print(f"Created {path}")
    print("Review it, then: devkit db.migrate")


@task
@reports_errors
@follows_branch
def current(c):
    """Show the revision the database is at (alembic current)."""
    from devkit.alembic_api import app_of, show

    show(*app_of(c.config.devkit), "current")


@task
@reports_errors
@follows_branch
def history(c):
    """List the migrations, newest first, marking the current one (alembic history)."""
    from devkit.alembic_api import app_of, show

    show(*app_of(c.config.devkit), "history")


@task(name="merge-heads", help={"message": "Message of the merge revision"})
@reports_errors
def merge_heads(c, message="merge heads"):
    """Join parallel migration heads into one (alembic merge heads)."""
    from devkit.alembic_api import app_of
    from devkit.alembic_api import merge_heads as merge

    app_dir, target = app_of(c.config.devkit)
    print(f"Created {merge(app_dir, target, message)}")
    print("Then: devkit db.migrate")


TASKS = (migrate, downgrade, revision, current, history, merge_heads)
