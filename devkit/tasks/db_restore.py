"""db.restore and db.restore-s3: a backup (the kit's JSON, or a pg_dump file) loaded in one
transaction, after keeping what it replaces (a snapshot, or a backup file: devkit/safety_net.py)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from invoke import task

from devkit.tasks._cli import confirm, of_app, reports_errors
from devkit.tasks._output import RowProgress, print_diff

_RESTORE_HELP = {
    "dry-run": "Only check the file and show the diff; change nothing",
    "yes": "Do not ask for confirmation (required without a terminal)",
    "allow-other-version": "Load as it is although the backup's migration version differs (you know the schemas match); by default the kit migrates the schema to the backup's version and back",
    "to-head": "After a restore across migration versions, migrate to head (default: back to where the database was)",
    "exact": "Also empty the tables the backup does not have (default: they are left as they are)",
    "no-backup": "Keep nothing first (default: a snapshot on this machine's stack, else a backup file, with the command that undoes the restore)",
}
_CLEAN_HELP = "A plain SQL dump into a database that has its objects: set the database aside as a snapshot and load the dump into an empty one (as pg_restore --clean; put back if the load fails)"


def _named(c, target) -> str:
    """The database a restore changes, as its question names it: the stack's with its app and
    project, or one elsewhere with its host."""
    from devkit.safety_net import own_stack

    stack = own_stack(c.config.devkit, target)
    if stack is not None:
        return of_app(stack)
    return f"{target.database} on {target.host or 'localhost (PG* variables)'}"


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


def _restore_dump(
    c, path: Path, dry_run: bool, yes: bool, no_backup: bool, clean: bool = False
) -> None:
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
    if clean:
        from devkit.safety_net import set_aside_around
        from devkit.tasks._cli import local_stack, settings_of

        local_stack(c, "db.restore --clean")
        confirm(
            yes,
            "restore --clean replaces the database",
            f"Set {of_app(stack)} aside as a snapshot and load the dump into an empty one?",
        )
        with set_aside_around(stack, "db.restore", settings_of(c).snapshot_keep) as safety:
            print(f"Kept first: {safety} (the database as it was; an empty one takes its place)")
            pgdump.restore(stack, path)
        print("Restore completed (into an empty database, one transaction)")
        print(f"To undo it: {safety.undo()}")
        return
    _confirm(yes, of_app(stack))
    target = stack_target(stack.values)
    with _safety_net(c, target, no_backup, lambda d: pgdump.dump(stack, d)) as safety:
        pgdump.restore(stack, path)
    print("Restore completed (pg_restore/psql, one transaction)")
    if safety:
        print(f"To undo it: {safety.undo()}")


def _across_versions(
    c, target, path: Path, allow_other_version: bool, to_head: bool, no_backup: bool
):
    """The plan of a restore across migration versions (devkit/version_restore.py) and the
    stack it needs, or (None, None) when the versions are the same or may differ."""
    from devkit.backup.session import BackupError
    from devkit.errors import BadArgument
    from devkit.safety_net import own_stack
    from devkit.version_restore import plan

    crossing = None if allow_other_version else plan(c.config.devkit, target, path, to_head)
    if crossing is None:
        return None, None
    print(f"  {crossing.describe()}")
    stack = own_stack(c.config.devkit, target)
    by_hand = (
        f"migrate the database to {crossing.backup} first (devkit db.migrate --revision "
        f"{crossing.backup}, or db.downgrade {crossing.backup}), restore, then migrate back"
    )
    if stack is None:
        raise BackupError(
            "a restore across migration versions needs the stack's own database (a failure is "
            "undone from a snapshot); DATABASE_URL names another one",
            by_hand,
        )
    if no_backup:
        raise BadArgument(
            "--no-backup cannot be used across migration versions: a failure is undone from the "
            "snapshot kept first",
            f"leave out --no-backup, or {by_hand}",
        )
    return crossing, stack


def _say_unknown_revision(c, path: Path) -> None:
    """--allow-other-version wrote the backup's revision into alembic_version: say so when the
    app's migrations do not have it (db.migrate would fail with "Can't locate revision")."""
    import sys

    from devkit.version_restore import unknown_revision

    unknown = unknown_revision(c.config.devkit, path)
    if unknown:
        revision, head = unknown
        print(
            f"warning: the database now records migration {revision}, which the app's migrations "
            "do not have (--allow-other-version restores the backup's version as it is)\n"
            f"  fix: if the schema is the app's newest: devkit db.psql -c \"UPDATE alembic_version "
            f"SET version_num = '{head}'\"; else restore the migration files that have {revision}",
            file=sys.stderr,
        )


def _restore(
    c,
    path: Path,
    dry_run: bool,
    yes: bool,
    allow_other_version: bool,
    exact: bool = False,
    no_backup: bool = False,
    to_head: bool = False,
    clean: bool = False,
) -> None:
    from devkit.backup.dump import create_backup
    from devkit.backup.load import restore_backup
    from devkit.backup.pgdump import kind_of
    from devkit.backup.target import resolve_target

    kind = kind_of(path) if path.is_file() else None
    if clean and kind != "plain":
        from devkit.errors import BadArgument

        raise BadArgument(
            f"--clean is for a plain SQL dump (pg_dump > FILE.sql), and {path.name} is not one",
            "leave --clean out: the kit's backups replace the data of their tables, and "
            "pg_restore already drops a custom dump's objects first",
        )
    if kind:
        _restore_dump(c, path, dry_run, yes, no_backup, clean)
        return
    target = resolve_target(c.config.devkit)
    print(
        f"Restoring from backup: {path.name} into {target.database} on {target.host or 'localhost'}"
    )
    crossing, stack = _across_versions(c, target, path, allow_other_version, to_head, no_backup)
    if crossing and (dry_run or not yes):
        # The tables can be compared only once the schema is the backup's.
        if dry_run:
            print("Dry run: nothing changed (the tables are compared once migrated).")
            return
        confirm(
            yes,
            "restore replaces data",
            f"Migrate {_named(c, target)} to {crossing.backup}, replace the data of the backup's "
            f"tables, then migrate to {crossing.back_to}?",
        )
    elif dry_run or not yes:
        # Check the whole file and show what will change before asking.
        diff, _ = restore_backup(
            target, path, dry_run=True, allow_other_version=allow_other_version, exact=exact
        )
        print_diff(diff)
        if dry_run:
            print("Dry run: nothing changed.")
            return
        _confirm(yes, _named(c, target), diff)

    def take(directory: Path) -> Path:
        with RowProgress("Safety backup") as progress:
            return create_backup(target, directory, progress=progress).path

    # One pass: the file is checked while it loads; any fault rolls the transaction back.
    with (
        _safety_net(c, target, no_backup, take) as safety,
        RowProgress("Restoring") as progress,
    ):

        def load():
            return restore_backup(
                target,
                path,
                allow_other_version=allow_other_version,
                exact=exact,
                progress=progress,
                check_first=False,
            )

        if crossing:
            from devkit.version_restore import restore_across

            if not safety.snapshot:
                from devkit.backup.session import BackupError

                raise BackupError(
                    "a restore across migration versions needs a snapshot kept first, and none "
                    "was taken (devkit.snapshot_keep is 0, or the snapshot failed: see above)",
                    "set devkit.snapshot_keep above 0, or migrate the database to the backup's "
                    "version yourself first",
                )
            diff, result = restore_across(crossing, stack, safety.snapshot, load)
        else:
            diff, result = load()
    if yes:
        print_diff(diff)
    print(f"Restore completed: {result.restored_tables} tables, {result.restored_rows} rows")
    if crossing:
        print(f"Migrated back: the database is at {crossing.back_to}")
    elif allow_other_version:
        _say_unknown_revision(c, path)
    if safety and safety.snapshot:
        print(f"To undo it: {safety.undo()}")
    elif safety:
        undo = f"{safety.undo()} --exact"
        if diff.migration_version_backup != diff.migration_version_current:
            undo += " --allow-other-version"
        print(f"To undo it: {undo}")


@task(
    help={
        "file": "The backup file (a path, or a name in the backup directory)",
        **_RESTORE_HELP,
        "clean": _CLEAN_HELP,
    }
)
@reports_errors
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
    from devkit.backup.files import backup_to_read

    path = backup_to_read(c.config.devkit, file)
    _restore(c, path, dry_run, yes, allow_other_version, exact, no_backup, to_head, clean)


@task(name="restore-s3", help={"name": "The backup's name in the bucket", **_RESTORE_HELP})
@reports_errors
def restore_s3(
    c,
    name,
    dry_run=False,
    yes=False,
    allow_other_version=False,
    exact=False,
    no_backup=False,
    to_head=False,
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
        to_head,
    )


TASKS = (restore, restore_s3)
