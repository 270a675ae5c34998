"""db.*: backups of the app's database (devkit/backup): backup, verify, diff, restore, list, prune."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from invoke import Collection, task

from devkit.errors import BadArgument, DevkitError
from devkit.tasks import db_admin, migrations
from devkit.tasks._cli import confirm, reports_errors
from devkit.tasks._progress import RowProgress


def _kib(size: int) -> str:
    return f"{size / 1024:.2f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.2f} MB"


def _target(c):
    from devkit.backup.target import resolve_target

    return resolve_target(c.config.devkit)


def _admin_target(c):
    from devkit.backup.target import resolve_admin_target

    return resolve_admin_target(c.config.devkit)


def _reading_backups(c) -> None:
    """Readers of backup files hold at most the configured sizes in memory."""
    from devkit.backup.fileformat import apply_limits

    apply_limits(c.config.devkit)


def _backup_file(c, file: str) -> Path:
    """FILE as given, or a bare name looked up in the backup directory."""
    from devkit.backup.files import backup_dir

    _reading_backups(c)
    path = Path(file).expanduser()
    if not path.exists() and not path.is_absolute() and len(path.parts) == 1:
        candidate = backup_dir(c.config.devkit) / path
        if candidate.exists():
            return candidate
    return path


@task(
    help={
        "output-dir": "Directory for the file (default: devkit.backup_dir, else <app>/backups)",
        "format": "json (default: the kit's gzip JSON) or sql (pg_dump's custom format, by the stack's container)",
    }
)
@reports_errors
def backup(c, output_dir=None, format="json"):
    """Back up every table to backup_YYYYMMDD_HHMMSS.backup.gz; the last line printed is its path."""
    from devkit.backup.dump import create_backup
    from devkit.backup.files import backup_dir

    _reading_backups(c)
    directory = Path(output_dir).expanduser() if output_dir else backup_dir(c.config.devkit)
    if format not in ("json", "sql"):
        raise BadArgument(f"unknown format {format!r}", "use --format json or --format sql")
    if format == "sql":
        from devkit.backup.pgdump import dump
        from devkit.envfile import load_stack

        path = dump(load_stack(c.config.devkit), directory)
        print(
            f"pg_dump (custom format) of the stack's database: {_kib(path.stat().st_size)}",
            file=sys.stderr,
        )
        print(path)
        return
    target = _target(c)
    print(
        f"Creating database backup of {target.database} on {target.host or 'localhost'}...",
        file=sys.stderr,
    )
    with RowProgress("Backing up") as progress:
        summary = create_backup(target, directory, progress=progress)
    for name, rows in summary.tables.items():
        print(f"- {name}: {rows} rows", file=sys.stderr)
    print(f"Migration version: {summary.migration_version or '(none)'}", file=sys.stderr)
    print(
        f"Total: {len(summary.tables)} tables, {sum(summary.tables.values())} rows", file=sys.stderr
    )
    print(
        f"Backup size: {_kib(summary.uncompressed_bytes)} → {_kib(summary.compressed_bytes)} (compressed)",
        file=sys.stderr,
    )
    if summary.longest_line:
        needed = -(-summary.longest_line // (1 << 20))
        print(
            f"warning: a row of this backup is {needed} MiB as written, more than readers take "
            f"(devkit.backup_max_line_mb)\n  fix: before db.verify or db.restore of it, set "
            f"devkit.backup_max_line_mb to {needed} or more (invoke.yaml or "
            "INVOKE_DEVKIT_BACKUP_MAX_LINE_MB); the file is complete",
            file=sys.stderr,
        )
    print(summary.path)


@task(help={"file": "The backup file (a path, or a name in the backup directory)"})
@reports_errors
def verify(c, file):
    """Check a backup: gzip, JSON shape, row counts, SHA-256 (pg_dump files: pg_restore --list)."""
    from devkit.backup.pgdump import describe, kind_of
    from devkit.backup.reader import verify as check

    path = _backup_file(c, file)
    if path.is_file() and kind_of(path):
        from devkit.envfile import load_stack

        print(describe(load_stack(c.config.devkit), path))
        return
    report = check(path)
    rows = sum(report.tables.values())
    seal = (
        "SHA-256 verified"
        if report.checksum
        else "no SHA-256 inside (written by another tool): shape and counts checked"
    )
    print(
        f"{path.name}: OK — {len(report.tables)} tables, {rows} rows, "
        f"migration {report.metadata.migration_version or '(none)'}; {seal}"
    )


def _print_diff(diff) -> None:
    print(
        f"Migration version: {diff.migration_version_current or '(none)'} → {diff.migration_version_backup or '(none)'}"
    )
    print("Table Diff Summary:")
    for name, d in diff.tables.items():
        print(f"  {name}: {d.current_rows} → {d.backup_rows} ({d.diff:+d})")
    for name in diff.missing_tables:
        print(f"  {name}: not in this database")
    if diff.not_in_backup:
        what = (
            "not in the backup, emptied (--exact)"
            if diff.exact
            else "not in the backup, left as they are"
        )
        listed = ", ".join(
            name if rows is None else f"{name} ({rows} rows)"
            for name, rows in diff.not_in_backup.items()
        )
        print(f"Tables {what}: {listed}")
    print(
        f"Total: {diff.total_current_rows} rows → {diff.total_backup_rows} rows ({diff.total_diff:+d})"
    )


@task(help={"file": "The backup file (a path, or a name in the backup directory)"})
@reports_errors
def diff(c, file):
    """Show rows per table now and in a backup."""
    from devkit.backup.diff import calculate_diff
    from devkit.backup.pgdump import kind_of

    path = _backup_file(c, file)
    if path.is_file() and (kind := kind_of(path)):
        raise DevkitError(
            f"db.diff compares the kit's JSON backups (.backup.gz); {path.name} is a "
            f"pg_dump file ({kind} format), which records no row counts to compare",
            f"`invoke db.verify {path.name}` lists what it holds; `invoke db.restore "
            f"{path.name} --dry-run` checks it against the database",
        )
    print(f"Calculating diff with backup: {path.name}")
    _print_diff(calculate_diff(_target(c), path))


_RESTORE_HELP = {
    "dry-run": "Only check the file and show the diff; change nothing",
    "yes": "Do not ask for confirmation (required without a terminal)",
    "allow-other-version": "Restore although the backup's migration version differs (schemas must match)",
    "exact": "Also empty the tables the backup does not have (default: they are left as they are)",
    "no-backup": "Do not take a safety backup first (default: one is taken, with the command that undoes the restore)",
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
def _safety_backup(c, take, skip: bool):
    from devkit.backup.files import backup_dir, safety_copy

    if skip:
        yield None
        return
    with safety_copy(backup_dir(c.config.devkit), take) as path:
        print(f"Safety backup of the data before the restore: {path}")
        yield path


def _restore_dump(c, path: Path, dry_run: bool, yes: bool, no_backup: bool) -> None:
    from devkit.backup import pgdump
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
    with _safety_backup(c, lambda d: pgdump.dump(stack, d), no_backup) as safety:
        pgdump.restore(stack, path)
    print("Restore completed (pg_restore/psql, one transaction)")
    if safety:
        print(f"To undo it: invoke db.restore {safety} --yes")


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

    if path.is_file() and kind_of(path):
        _restore_dump(c, path, dry_run, yes, no_backup)
        return
    target = _admin_target(c)
    print(
        f"Restoring from backup: {path.name} into {target.database} on {target.host or 'localhost'}"
    )
    if dry_run or not yes:
        # Check the whole file and show what will change before asking.
        diff, _ = restore_backup(
            target, path, dry_run=True, allow_other_version=allow_other_version, exact=exact
        )
        _print_diff(diff)
        if dry_run:
            print("Dry run: nothing changed.")
            return
        _confirm(yes, target.database, diff)

    def take(directory: Path) -> Path:
        with RowProgress("Safety backup") as progress:
            return create_backup(target, directory, progress=progress).path

    # One pass: the file is checked while it loads; any fault rolls the transaction back.
    with (
        _safety_backup(c, take, no_backup) as safety,
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
        _print_diff(diff)
    print(f"Restore completed: {result.restored_tables} tables, {result.restored_rows} rows")
    if safety:
        undo = f"invoke db.restore {safety} --yes --exact"
        if diff.migration_version_backup != diff.migration_version_current:
            undo += " --allow-other-version"
        print(f"To undo it: {undo}")


@task(help={"file": "The backup file (a path, or a name in the backup directory)", **_RESTORE_HELP})
@reports_errors
def restore(
    c, file, dry_run=False, yes=False, allow_other_version=False, exact=False, no_backup=False
):
    """Replace the data of the backup's tables with the backup's, in one transaction (all or nothing)."""
    _restore(c, _backup_file(c, file), dry_run, yes, allow_other_version, exact, no_backup)


@task(help={"file": "The backup file (a path, or a name in the backup directory)"})
@reports_errors
def upload(c, file):
    """Upload a backup to S3 (devkit.s3_bucket) after checking it; the object carries its SHA-256."""
    from devkit.backup.remote import bucket_of
    from devkit.backup.remote import upload as put

    print(f"uploaded to {put(bucket_of(c.config.devkit), _backup_file(c, file))}")


@task(
    help={
        "name": "The backup's name in the bucket",
        "output-dir": "Where to save it (default: the backup directory)",
    }
)
@reports_errors
def download(c, name, output_dir=None):
    """Download a backup from S3, checked against its SHA-256, into the backup directory."""
    from devkit.backup.files import backup_dir
    from devkit.backup.remote import bucket_of
    from devkit.backup.remote import download as get

    _reading_backups(c)
    directory = Path(output_dir).expanduser() if output_dir else backup_dir(c.config.devkit)
    print(get(bucket_of(c.config.devkit), name, directory))


@task(name="list-remote")
@reports_errors
def list_remote(c):
    """List the backups in S3, newest first."""
    from devkit.backup.remote import bucket_of
    from devkit.backup.remote import list_remote as remote_backups

    bucket = bucket_of(c.config.devkit)
    backups = remote_backups(bucket)
    if not backups:
        print(f"no backups in s3://{bucket.name}/{bucket.prefix}")
    for b in backups:
        print(f"{b.name}  {_kib(b.size):>12}  {b.modified:%Y-%m-%d %H:%M:%S}")


@task(name="restore-s3", help={"name": "The backup's name in the bucket", **_RESTORE_HELP})
@reports_errors
def restore_s3(
    c, name, dry_run=False, yes=False, allow_other_version=False, exact=False, no_backup=False
):
    """Download a backup from S3 (checked), then restore it like db.restore."""
    from devkit.backup.files import backup_dir
    from devkit.backup.remote import bucket_of
    from devkit.backup.remote import download as get

    _reading_backups(c)
    _restore(
        c,
        get(bucket_of(c.config.devkit), name, backup_dir(c.config.devkit)),
        dry_run,
        yes,
        allow_other_version,
        exact,
        no_backup,
    )


@task(name="list")
@reports_errors
def list_(c):
    """List local backups, newest first."""
    from datetime import datetime

    from devkit.backup.files import backup_dir, list_backups

    directory = backup_dir(c.config.devkit)
    backups = list_backups(directory) if directory.is_dir() else []
    if not backups:
        print(f"no backups in {directory}")
        return
    for b in backups:
        print(
            f"{b.path.name}  {_kib(b.size):>12}  {datetime.fromtimestamp(b.mtime):%Y-%m-%d %H:%M:%S}"
        )


@task(
    help={
        "retention-days": "Keep this many days (default: BACKUP_RETENTION_DAYS, else devkit.backup_retention_days)"
    }
)
@reports_errors
def prune(c, retention_days=None):
    """Delete local backups older than the retention and leftover partial files; the newest intact backup stays."""
    from devkit.backup.files import backup_dir, is_intact, plan_prune
    from devkit.backup.files import retention_days as days_of
    from devkit.envfile import load_stack
    from devkit.errors import DevkitError

    _reading_backups(c)
    days = days_of(c.config.devkit, retention_days)
    directory = backup_dir(c.config.devkit)
    try:
        stack = load_stack(c.config.devkit)
    except DevkitError:  # pg_dump files are then checked without the container
        stack = None
    plan = (
        plan_prune(directory, days, lambda p: is_intact(p, stack)) if directory.is_dir() else None
    )
    if not plan or not plan.delete:
        print(f"nothing older than {days} days in {directory}")
        return
    for path in plan.delete:
        path.unlink(missing_ok=True)
        print(f"deleted {path.name}")
    if plan.kept_newest_verified:
        print(f"kept the newest intact backup: {plan.kept_newest_verified.name}")
    else:
        print("no intact backup was found to keep", file=sys.stderr)


ns = Collection(
    "db", backup, verify, diff, restore, list_, prune, upload, download, list_remote, restore_s3
)
for _task in (*migrations.TASKS, *db_admin.TASKS):
    ns.add_task(_task)
