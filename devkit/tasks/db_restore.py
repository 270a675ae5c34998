"""db.restore and db.restore-s3: a backup (the kit's JSON, or a pg_dump file) loaded in one
transaction, after keeping what it replaces (a snapshot, or a backup file: devkit/safety_net.py)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from invoke import task

from devkit.tasks._cli import confirm, reports_errors
from devkit.tasks._output import RowProgress, print_diff

_RESTORE_HELP = {
    "dry-run": "Only check the file and show the diff; change nothing",
    "yes": "Do not ask for confirmation (required without a terminal)",
    "allow-other-version": "Restore although the backup's migration version differs (schemas must match)",
    "exact": "Also empty the tables the backup does not have (default: they are left as they are)",
    "no-backup": "Keep nothing first (default: a snapshot on this machine's stack, else a backup file, with the command that undoes the restore)",
}


def _confirm(yes: bool, database: str, diff=None) -> None:
    if diff is None:  # a pg_dump file: its objects are dropped and created again
        question = f"Replace the objects and data of the dump in {database}?"
    else:
        question = (
            f"Replace the data of {len(diff.tables)} table(s) in {database} with this backup?"
        )
        if diff.not_in_backup:
            question += f" {len(diff.not_in_backup)} table(s) not in the backup will be " + (
                "EMPTIED (--exact)." if diff.exact else "left as they are."
            )
    confirm(yes, "restore replaces data", question)


@contextlib.contextmanager
def _safety_net(c, target, skip: bool, to_file=None):
    """What the restore replaces, kept first: a snapshot on this machine's stack, else a backup
    file (devkit/safety_net.py); removed again when the restore fails."""
    from devkit.safety_net import kept_around

    with kept_around(c.config.devkit, target, "db.restore", skip, to_file=to_file) as net:
        if net:
            print(f"Kept first: {net}")
        yield net


def _restore_dump(c, path: Path, dry_run: bool, yes: bool, no_backup: bool) -> None:
    from devkit.backup import pgdump
    from devkit.backup.target import stack_target
    from devkit.envfile import load_stack

    stack = load_stack(c.config.devkit)
    print(
        f"Restoring from pg_dump file: {path.name} into {stack.pg_database} (the stack's container)"
    )
    print(pgdump.describe(stack, path))
    if dry_run:
        print("Dry run: nothing changed.")
        return
    _confirm(yes, stack.pg_database)
    target = stack_target(stack.values)
    with _safety_net(c, target, no_backup, lambda d: pgdump.dump(stack, d)) as safety:
        pgdump.restore(stack, path)
    print("Restore completed (pg_restore/psql, one transaction)")
    if safety:
        print(f"To undo it: {safety.undo()}")


def _restore(
    c,
    path: Path,
    dry_run: bool,
    yes: bool,
    allow_other_version: bool,
    exact: bool = False,
    no_backup: bool = False,
) -> None:
    from devkit.backup.dump import create_backup
    from devkit.backup.load import restore_backup
    from devkit.backup.pgdump import kind_of
    from devkit.backup.target import resolve_admin_target as admin_target

    if path.is_file() and kind_of(path):
        _restore_dump(c, path, dry_run, yes, no_backup)
        return
    target = admin_target(c.config.devkit)
    print(
        f"Restoring from backup: {path.name} into {target.database} on {target.host or 'localhost'}"
    )
    if dry_run or not yes:
        # Check the whole file and show what will change before asking.
        diff, _ = restore_backup(
            target, path, dry_run=True, allow_other_version=allow_other_version, exact=exact
        )
        print_diff(diff)
        if dry_run:
            print("Dry run: nothing changed.")
            return
        _confirm(yes, target.database, diff)

    def take(directory: Path) -> Path:
        with RowProgress("Safety backup") as progress:
            return create_backup(target, directory, progress=progress).path

    # One pass: the file is checked while it loads; any fault rolls the transaction back.
    with (
        _safety_net(c, target, no_backup, take) as safety,
        RowProgress("Restoring") as progress,
    ):
        diff, result = restore_backup(
            target,
            path,
            allow_other_version=allow_other_version,
            exact=exact,
            progress=progress,
            check_first=False,
        )
    if yes:
        print_diff(diff)
    print(f"Restore completed: {result.restored_tables} tables, {result.restored_rows} rows")
    if safety and safety.snapshot:
        print(f"To undo it: {safety.undo()}")
    elif safety:
        undo = f"{safety.undo()} --exact"
        if diff.migration_version_backup != diff.migration_version_current:
            undo += " --allow-other-version"
        print(f"To undo it: {undo}")


@task(help={"file": "The backup file (a path, or a name in the backup directory)", **_RESTORE_HELP})
@reports_errors
def restore(
    c, file, dry_run=False, yes=False, allow_other_version=False, exact=False, no_backup=False
):
    """Replace the data of the backup's tables with the backup's, in one transaction (all or nothing)."""
    from devkit.backup.files import backup_to_read

    path = backup_to_read(c.config.devkit, file)
    _restore(c, path, dry_run, yes, allow_other_version, exact, no_backup)


@task(name="restore-s3", help={"name": "The backup's name in the bucket", **_RESTORE_HELP})
@reports_errors
def restore_s3(
    c, name, dry_run=False, yes=False, allow_other_version=False, exact=False, no_backup=False
):
    """Download a backup from S3 (checked), then restore it like db.restore."""
    from devkit.backup.fileformat import apply_limits
    from devkit.backup.files import backup_dir
    from devkit.backup.remote import bucket_of
    from devkit.backup.remote import download as get

    apply_limits(c.config.devkit)
    _restore(
        c,
        get(bucket_of(c.config.devkit), name, backup_dir(c.config.devkit)),
        dry_run,
        yes,
        allow_other_version,
        exact,
        no_backup,
    )


TASKS = (restore, restore_s3)
