"""What the db tasks print: sizes, a backup's diff against the database, and a progress bar for
long backup work (rich, on stderr, only when stderr is a terminal)."""

from __future__ import annotations

import sys


class RowProgress:
    """Rows done against an estimate. Off a terminal it prints nothing: the tasks' summaries
    stay the only output in logs and pipes."""

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.bar = None
        self.task = None

    def __enter__(self) -> RowProgress:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                MofNCompleteColumn(),
                TextColumn("rows"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
        return self

    def start(self, total_rows: int | None) -> None:
        if self.bar is not None:
            self.task = self.bar.add_task(self.verb, total=total_rows or None)

    def advance(self, table: str, rows: int) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, advance=rows, description=f"{self.verb} {table}")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def kib(size: int) -> str:
    return f"{size / 1024:.2f} KB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.2f} MB"


def print_diff(diff) -> None:
    current, backup = diff.migration_version_current, diff.migration_version_backup
    if backup is None or backup == current:
        # A backup that records none leaves the database's as it is (load._set_migration_version).
        kept = " (the backup records none)" if backup is None and current else ""
        print(f"Migration version: {current or '(none)'}, kept{kept}")
    else:
        print(f"Migration version: {current or '(none)'} → {backup}")
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
