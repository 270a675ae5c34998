"""db.*: backups of the app's database (devkit/backup): backup, verify, diff, list, prune; the
namespace also takes db_restore's, db_remote's, migrations' and db_admin's tasks."""

from __future__ import annotations

import sys
from pathlib import Path

from invoke import Collection, task

from devkit.errors import BadArgument, DevkitError
from devkit.tasks import db_admin, db_pull, db_remote, db_restore, db_snapshot, migrations
from devkit.tasks._cli import follows_branch, reports_errors
from devkit.tasks._output import RowProgress, kib, print_diff


def _target(c):
    from devkit.backup.target import resolve_target

    return resolve_target(c.config.devkit)


def _backup_file(c, file: str) -> Path:
    from devkit.backup.fileformat import backup_to_read

    return backup_to_read(c.config.devkit, file)


@task(
    help={
        "output-dir": "Directory for the file (default: devkit.backup_dir, else <app>/backups)",
        "format": "copy (default: the kit's file, rows in COPY's text format), json (the kit's file, "
        "each row a JSON array: the earlier backup script's shape) or sql (pg_dump's custom "
        "format, by the stack's container)",
    }
)
@reports_errors
@follows_branch
def backup(c, output_dir=None, format="copy"):
    """Back up every table to backup_YYYYMMDD_HHMMSS.backup.gz; the last line printed is its path."""
    from devkit.backup.dump import create_backup
    from devkit.backup.fileformat import apply_limits
    from devkit.backup.files import backup_dir

    apply_limits(c.config.devkit)
    directory = Path(output_dir).expanduser() if output_dir else backup_dir(c.config.devkit)
    if format not in ("copy", "json", "sql"):
        raise BadArgument(
            f"unknown format {format!r}", "use --format copy (the default), json or sql"
        )
    if format == "sql":
        from devkit.backup.pgdump import dump
        from devkit.envfile import load_stack

        path = dump(load_stack(c.config.devkit), directory)
        print(
            f"pg_dump (custom format) of the stack's database: {kib(path.stat().st_size)}",
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
        summary = create_backup(target, directory, progress=progress, json_rows=format == "json")
    for name, rows in summary.tables.items():
        print(f"- {name}: {rows} rows", file=sys.stderr)
    print(f"Migration version: {summary.migration_version or '(none)'}", file=sys.stderr)
    print(
        f"Total: {len(summary.tables)} tables, {sum(summary.tables.values())} rows", file=sys.stderr
    )
    print(
        f"Backup size: {kib(summary.uncompressed_bytes)} → {kib(summary.compressed_bytes)} (compressed)",
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
    """Check a backup: gzip, shape, row counts, SHA-256 (pg_dump files: pg_restore --list)."""
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


@task(help={"file": "The backup file (a path, or a name in the backup directory)"})
@reports_errors
@follows_branch
def diff(c, file):
    """Show rows per table now and in a backup."""
    from devkit.backup.diff import calculate_diff
    from devkit.backup.pgdump import kind_of

    path = _backup_file(c, file)
    if path.is_file() and (kind := kind_of(path)):
        raise DevkitError(
            f"db.diff compares the kit's JSON backups (.backup.gz); {path.name} is a "
            f"pg_dump file ({kind} format), which records no row counts to compare",
            f"`devkit db.verify {path.name}` lists what it holds; `devkit db.restore "
            f"{path.name} --dry-run` checks it against the database",
        )
    print(f"Calculating diff with backup: {path.name}")
    print_diff(calculate_diff(_target(c), path))


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
            f"{b.path.name}  {kib(b.size):>12}  {datetime.fromtimestamp(b.mtime):%Y-%m-%d %H:%M:%S}"
        )


@task(
    help={
        "retention-days": "Keep this many days (default: BACKUP_RETENTION_DAYS, else devkit.backup_retention_days)"
    }
)
@reports_errors
def prune(c, retention_days=None):
    """Delete local backups older than the retention and leftover partial files; the newest intact backup stays."""
    from devkit.backup.fileformat import apply_limits
    from devkit.backup.files import backup_dir, plan_prune
    from devkit.backup.files import retention_days as days_of
    from devkit.backup.reader import is_intact
    from devkit.envfile import load_stack
    from devkit.errors import DevkitError

    apply_limits(c.config.devkit)
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


ns = Collection("db", backup, verify, diff, list_, prune)
for _task in (
    *db_restore.TASKS,
    *db_remote.TASKS,
    *migrations.TASKS,
    *db_admin.TASKS,
    *db_snapshot.TASKS,
):
    ns.add_task(_task)
ns.add_collection(db_snapshot.ns)
ns.add_collection(db_pull.ns)
