"""The backup file's records, with the extra metadata this kit records: dataclasses, so that
writing a backup imports no pydantic (about 70 ms of `db.backup`'s start); a file read is
validated against them with pydantic, imported only then (`metadata_of`, `header_of`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

# The format this kit writes: a table's rows in COPY's text format (devkit/backup/fileformat.py).
FORMAT = "devkit-backup/2"
# Format 1: the same layout, each row a JSON array (this kit's files before commit 0a6b987, 2026-12-05).
FORMAT_JSON_ROWS = "devkit-backup/1"


@dataclass(kw_only=True)
class BackupMetadata:
    timestamp: datetime
    migration_version: str | None = None
    database_name: str
    database_host: str
    # Extras; a file written by the earlier backup script has none of them.
    format: str | None = None
    server_version: str | None = None
    # Sequence name -> [last_value, is_called], restored so the next insert does not collide.
    sequences: dict[str, list[Any]] = field(default_factory=dict)
    # The tables in the file, in file order: a restore knows what it replaces before it reads
    # the rows (files written before this key existed are read once more for it).
    tables: list[str] | None = None

    def as_json(self) -> dict[str, Any]:
        """The metadata as the file's JSON holds it (the time in ISO 8601, UTC as `Z`, as
        pydantic wrote it before)."""
        utc = self.timestamp.astimezone(UTC) if self.timestamp.tzinfo else self.timestamp
        stamp = utc.isoformat().replace("+00:00", "Z")
        return asdict(self) | {"timestamp": stamp}


@dataclass(kw_only=True)
class TableHeader:
    """A table's entry without its rows (rows are streamed, never held)."""

    columns: list[str]
    column_types: list[str] | None = None
    row_count: int | None = None


@dataclass(kw_only=True)
class TableDiff:
    current_rows: int
    backup_rows: int
    diff: int


@dataclass(kw_only=True)
class DiffSummary:
    migration_version_current: str | None
    migration_version_backup: str | None
    tables: dict[str, TableDiff]
    missing_tables: list[str] = field(default_factory=list)
    # Tables of the database that the backup does not have, with their rows when counted. A
    # restore leaves them as they are, or empties them with `exact`.
    not_in_backup: dict[str, int | None] = field(default_factory=dict)
    exact: bool = False
    total_current_rows: int
    total_backup_rows: int
    total_diff: int


@dataclass(kw_only=True)
class RestoreResult:
    success: bool
    restored_tables: int
    restored_rows: int
    message: str = ""


@cache
def _adapter(record: type) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(record)


def metadata_of(meta: dict) -> BackupMetadata:
    """A file's metadata, validated (pydantic's ValidationError is a ValueError)."""
    return _adapter(BackupMetadata).validate_python(meta)


def header_of(header: dict | str) -> TableHeader:
    """A table's header, as an object or its JSON text, validated."""
    adapter = _adapter(TableHeader)
    if isinstance(header, str):
        return adapter.validate_json(header)
    return adapter.validate_python(header)
