"""The backup file's models (pydantic), with the extra metadata this kit records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

# The format this kit writes: a table's rows in COPY's text format (devkit/backup/fileformat.py).
FORMAT = "devkit-backup/2"
# Format 1: the same layout, each row a JSON array (this kit's files before commit 0a6b987, 2026-12-05).
FORMAT_JSON_ROWS = "devkit-backup/1"


class BackupMetadata(BaseModel):
    timestamp: datetime
    migration_version: str | None = None
    database_name: str
    database_host: str
    # Extras; a file written by the earlier backup script has none of them.
    format: str | None = None
    server_version: str | None = None
    # Sequence name -> [last_value, is_called], restored so the next insert does not collide.
    sequences: dict[str, list[Any]] = Field(default_factory=dict)
    # The tables in the file, in file order: a restore knows what it replaces before it reads
    # the rows (files written before this key existed are read once more for it).
    tables: list[str] | None = None


class TableHeader(BaseModel):
    """A table's entry without its rows (rows are streamed, never held)."""

    columns: list[str]
    column_types: list[str] | None = None
    row_count: int | None = None


class TableDiff(BaseModel):
    current_rows: int
    backup_rows: int
    diff: int


class DiffSummary(BaseModel):
    migration_version_current: str | None
    migration_version_backup: str | None
    tables: dict[str, TableDiff]
    missing_tables: list[str] = Field(default_factory=list)
    # Tables of the database that the backup does not have, with their rows when counted. A
    # restore leaves them as they are, or empties them with `exact`.
    not_in_backup: dict[str, int | None] = Field(default_factory=dict)
    exact: bool = False
    total_current_rows: int
    total_backup_rows: int
    total_diff: int


class RestoreResult(BaseModel):
    success: bool
    restored_tables: int
    restored_rows: int
    message: str = ""
