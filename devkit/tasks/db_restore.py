"""db.restore and db.restore-s3: a backup (the kit's JSON, or a pg_dump file) loaded in one
transaction, after keeping what it replaces (a snapshot, or a backup file: devkit/safety_net.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import task

from devkit.tasks._cli import confirm, follows_branch, of_app, reports_errors
from devkit.tasks._output import RowProgress, print_diff
from devkit.tasks.db_remote import FROM_HOST_HELP

_RESTORE_HELP = {
    "dry-run": "Only check the file and show the diff; change nothing",
    "yes": "Do not ask for confirmation (required without a terminal)",
    "allow-other-version": "Load as it is although the backup's migration version differs (you know the schemas match); by default the kit migrates the schema to the backup's version and back",
    "to-head": "After a restore across migration versions, migrate to head (default: back to where the database was)",
    "exact": "Also empty the tables the backup does not have (default: they are left as they are)",
    "no-backup": "Keep nothing first (default: a snapshot on this machine's stack, else a backup file, with the command that undoes the restore)",
}
_CLEAN_HELP = "A plain SQL dump into a database that has its objects: set the database aside as a snapshot and load the dump into an empty one (as pg_restore --clean; put back if the load fails)"


def _named(plan) -> str:
    """The database a restore changes, as its question names it: the stack's with its app and
    project, or one elsewhere with its host."""
    if plan.stack is not None:
        return of_app(plan.stack)
    return f"{plan.target.database} on {plan.target.host or 'localhost (PG* variables)'}"


def _confirm(yes: bool, plan, diff=None) -> None:
    if plan.options.clean:
        question = (
            f"Set {of_app(plan.stack)} aside as a snapshot and load the dump into an empty one?"
        )
        confirm(yes, "restore --clean replaces the database", question)
        return
    if plan.is_dump:  # its objects are dropped and created again
        question = f"Replace the objects and data of the dump in {_named(plan)}?"
    elif plan.crossing:
        question = (
            f"Migrate {_named(plan)} to {plan.crossing.backup}, replace the data of the backup's "
            f"tables, then migrate to {plan.crossing.back_to}?"
        )
    else:
        question = (
            f"Replace the data of {len(diff.tables)} table(s) in {_named(plan)} with this backup?"
        )
        if diff.not_in_backup:
            question += f" {len(diff.not_in_backup)} table(s) not in the backup will be " + (
                "EMPTIED (--exact)." if diff.exact else "left as they are."
            )
    confirm(yes, "restore replaces data", question)


def _restore(c, path: Path, dry_run: bool, yes: bool, options) -> None:
    from devkit.commands import restore as use_case

    plan = use_case.prepare(c.config.devkit, path, options)
    if plan.is_dump:
        print(
            f"Restoring from pg_dump file: {path.name} into {plan.stack.pg_database} "
            "(the stack's container)"
        )
        print(plan.listing)
    else:
        print(
            f"Restoring from backup: {path.name} into {plan.target.database} on "
            f"{plan.target.host or 'localhost'}"
        )
        if plan.crossing:
            print(f"  {plan.crossing.describe()}")
    diff = None
    if dry_run or not yes:
        if not plan.is_dump and not plan.crossing:
            # Check the whole file and show what will change before asking.
            diff = use_case.compare(plan)
            print_diff(diff)
        if dry_run:
            # Across migration versions, the tables can be compared only once migrated.
            print(
                "Dry run: nothing changed"
                + (" (the tables are compared once migrated)." if plan.crossing else ".")
            )
            return
        _confirm(yes, plan, diff)
    result = use_case.run(c.config.devkit, plan, progress=RowProgress)
    if plan.options.clean:
        print("Restore completed (into an empty database, one transaction)")
    elif plan.is_dump:
        print("Restore completed (pg_restore/psql, one transaction)")
    else:
        if yes:
            print_diff(result.diff)
        print(f"Restore completed: {result.tables} tables, {result.rows} rows")
        if plan.crossing:
            print(f"Migrated back: the database is at {plan.crossing.back_to}")
        elif result.unknown_revision:
            revision, head = result.unknown_revision
            print(
                f"warning: the database now records migration {revision}, which the app's "
                "migrations do not have (--allow-other-version restores the backup's version "
                f"as it is)\n  fix: if the schema is the app's newest: devkit db.psql -c "
                f"\"UPDATE alembic_version SET version_num = '{head}'\"; else restore the "
                f"migration files that have {revision}",
                file=sys.stderr,
            )
    if result.undo():
        print(f"To undo it: {result.undo()}")


def _options(allow_other_version, exact, no_backup, to_head, clean=False):
    from devkit.commands.restore import RestoreOptions

    return RestoreOptions(allow_other_version, exact, no_backup, to_head, clean)


@task(
    help={
        "file": "The backup file (a path, or a name in the backup directory)",
        **_RESTORE_HELP,
        "clean": _CLEAN_HELP,
    }
)
@reports_errors
@follows_branch
def restore(
    c,
    file,
    dry_run=False,
    yes=False,
    allow_other_version=False,
    exact=False,
    no_backup=False,
    to_head=False,
    clean=False,
):
    """Replace the data of the backup's tables with the backup's, in one transaction (all or nothing)."""
    from devkit.backup.fileformat import backup_to_read

    path = backup_to_read(c.config.devkit, file)
    _restore(c, path, dry_run, yes, _options(allow_other_version, exact, no_backup, to_head, clean))


@task(
    name="restore-s3",
    aliases=["restore-remote"],
    help={
        "name": "The backup's name in the backup destination",
        **FROM_HOST_HELP,
        **_RESTORE_HELP,
    },
)
@reports_errors
@follows_branch
def restore_s3(
    c,
    name,
    dry_run=False,
    yes=False,
    allow_other_version=False,
    exact=False,
    no_backup=False,
    to_head=False,
    from_host=None,
):
    """Fetch a backup from the backup destination (S3 or a directory), checked, then restore it like db.restore."""
    from devkit.backup.fileformat import apply_limits
    from devkit.backup.files import backup_dir
    from devkit.destinations import destination_of

    apply_limits(c.config.devkit)
    path = destination_of(c.config.devkit, from_host).download(name, backup_dir(c.config.devkit))
    _restore(c, path, dry_run, yes, _options(allow_other_version, exact, no_backup, to_head))


TASKS = (restore, restore_s3)
