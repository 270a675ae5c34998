"""A progress bar for long backup work: rich, on stderr, only when stderr is a terminal."""

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
