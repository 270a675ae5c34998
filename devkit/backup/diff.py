"""calculate_diff: rows per table in the database and in a backup file."""

from __future__ import annotations

from pathlib import Path

from devkit.backup.catalog import app_tables, migration_version, resolve_table, row_counts
from devkit.backup.models import DiffSummary, TableDiff
from devkit.backup.reader import verify
from devkit.backup.session import connect
from devkit.backup.target import Target


def calculate_diff(target: Target, backup_path: Path, exact: bool = False) -> DiffSummary:
    """Rows per table now and in the backup, and the tables the backup does not have (the file
    is checked whole first)."""
    report = verify(backup_path)
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            app = {t.qualified for t in app_tables(cur)}
            resolved = {name: resolve_table(cur, name, app) for name in report.tables}
            others = sorted(app - set(resolved.values()))
            current = row_counts(cur, [r for r in resolved.values() if r] + others)
            version = migration_version(cur)
    finally:
        conn.close()
    diffs = {
        name: TableDiff(
            current_rows=current[r],
            backup_rows=report.tables[name],
            diff=report.tables[name] - current[r],
        )
        for name, r in resolved.items()
        if r
    }
    not_in_backup = {name: current[name] for name in others}
    total_current = sum(d.current_rows for d in diffs.values())
    total_backup = sum(report.tables.values())
    if exact:
        total_current += sum(not_in_backup.values())
    return DiffSummary(
        migration_version_current=version,
        migration_version_backup=report.metadata.migration_version,
        tables=diffs,
        missing_tables=[name for name, r in resolved.items() if not r],
        not_in_backup=not_in_backup,
        exact=exact,
        total_current_rows=total_current,
        total_backup_rows=total_backup,
        total_diff=total_backup - total_current,
    )


def restored_summary(
    before: dict[str, int],
    loaded: dict[str, tuple[str, int]],
    current_version: str | None,
    backup_version: str | None,
    exact: bool,
    others: list[str],
) -> DiffSummary:
    """What a restore changed: rows per table before and loaded (`loaded`: the file's name ->
    (table here, rows)); `others`: the app's tables it left as they were."""
    tables = {
        name: TableDiff(current_rows=before[here], backup_rows=rows, diff=rows - before[here])
        for name, (here, rows) in loaded.items()
    }
    restored = {here for here, _ in loaded.values()}
    if exact:
        not_in_backup = {name: rows for name, rows in before.items() if name not in restored}
    else:
        not_in_backup = {name: None for name in others}
    total_current = sum(before.values())
    total_backup = sum(d.backup_rows for d in tables.values())
    return DiffSummary(
        migration_version_current=current_version,
        migration_version_backup=backup_version,
        tables=tables,
        not_in_backup=not_in_backup,
        exact=exact,
        total_current_rows=total_current,
        total_backup_rows=total_backup,
        total_diff=total_backup - total_current,
    )
