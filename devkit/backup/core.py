"""create_backup, calculate_diff, restore_backup (seed 004), streamed and transactional."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
from psycopg2 import errors, extensions

from devkit.backup.catalog import (
    MIGRATION_TABLE,
    Table,
    app_tables,
    foreign_keys,
    load_order,
    migration_version,
    quote_ident,
    sequences,
    sql_name,
)
from devkit.backup.fileformat import BackupReader, BackupWriter, CorruptBackup, verify
from devkit.backup.models import BackupMetadata, DiffSummary, RestoreResult, TableDiff
from devkit.backup.target import Target
from devkit.errors import DevkitError

# Rows handed to the gzip writer at once: few large writes instead of one per row.
_BATCH = 2000
# Session settings that make the JSON of every value exact and independent of the server's defaults.
_EXACT_OUTPUT = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 1; SET bytea_output = 'hex'"
)

Progress = Callable[[str, int], None]


class BackupError(DevkitError):
    """A backup or restore could not be done; nothing was changed."""


def connect(target: Target):
    try:
        return psycopg2.connect(target.dsn, application_name="devkit-backup", connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise BackupError(
            f"cannot connect to database {target.database or '?'} on {target.host or 'localhost'}: "
            f"{str(exc).strip().splitlines()[0]}",
            "is the stack up (`invoke up`)? For a remote database check DATABASE_URL / PG* variables",
        ) from None


def _row_expression(table: Table) -> str:
    """One JSON array of a row, as text. `||` has no argument limit (json_build_array has 100)."""
    parts = []
    for column in table.columns:
        value = quote_ident(column.name) + ("::text" if column.as_text else "")
        parts.append(f"coalesce(to_json({value})::text, 'null')")
    return "'[' || " + (" || ',' || ".join(parts) if parts else "''") + " || ']'"


class _RowSink:
    """The file psycopg2's COPY TO writes into: rows are un-escaped and batched to the writer."""

    def __init__(self, writer: BackupWriter) -> None:
        self.writer = writer
        self.batch: list[str] = []
        self.pending = ""

    def write(self, data: str | bytes) -> None:
        text = self.pending + (data.decode() if isinstance(data, bytes) else data)
        lines = text.split("\n")
        self.pending = lines.pop()
        # COPY's text format doubles backslashes; JSON text has no other character it escapes.
        self.batch.extend(line.replace("\\\\", "\\") for line in lines)
        if len(self.batch) >= _BATCH:
            self.flush()

    def flush(self) -> None:
        self.writer.write_rows(self.batch)
        self.batch = []


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    migration_version: str | None
    tables: dict[str, int]
    uncompressed_bytes: int
    compressed_bytes: int


def backup_name(now: datetime, directory: Path, suffix: str = ".backup.gz") -> Path:
    base = f"backup_{now:%Y%m%d_%H%M%S}"
    path, n = directory / f"{base}{suffix}", 1
    while path.exists():
        n += 1
        path = directory / f"{base}_{n}{suffix}"
    return path


def create_backup(
    target: Target, output_dir: Path, progress: Progress | None = None
) -> BackupSummary:
    """Every table of the app's schemas, from one REPEATABLE READ READ ONLY snapshot, streamed to
    backup_YYYYMMDD_HHMMSS.backup.gz (written atomically, mode 0600)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    conn = connect(target)
    try:
        conn.set_session(isolation_level=extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        with conn.cursor() as cur:
            cur.execute(_EXACT_OUTPUT)
            # Row-level security must never hide rows from a backup: fail instead, as pg_dump does.
            cur.execute("SET row_security = off")
            tables = {t.qualified: t for t in app_tables(cur)}
            order = load_order(sorted(tables), foreign_keys(cur))
            cur.execute("SHOW server_version")
            server_version = cur.fetchone()[0]
            metadata = BackupMetadata(
                timestamp=datetime.now(UTC),
                migration_version=migration_version(cur),
                database_name=conn.info.dbname,
                database_host=target.host or conn.info.host,
                server_version=server_version,
                sequences=sequences(cur),
            )
            now = metadata.timestamp
            writer = BackupWriter(backup_name(now, output_dir), metadata)
            counts: dict[str, int] = {}
            try:
                for name in order:  # parents first, so a restore can load in file order
                    table = tables[name]
                    writer.begin_table(
                        name, [c.name for c in table.columns], [c.type for c in table.columns]
                    )
                    sink = _RowSink(writer)
                    cur.copy_expert(
                        f"COPY (SELECT {_row_expression(table)} FROM ONLY {sql_name(name)}) TO STDOUT",
                        sink,
                    )
                    sink.flush()
                    counts[name] = writer.end_table()
                    if progress:
                        progress(name, counts[name])
                path = writer.finish()
            except BaseException:
                writer.abort()
                raise
    except errors.InsufficientPrivilege as exc:
        raise BackupError(
            f"not allowed to read every row: {exc.pgerror.strip()}", "back up as the tables' owner"
        ) from None
    finally:
        conn.rollback()
        conn.close()
    return BackupSummary(
        path, metadata.migration_version, counts, writer.uncompressed, path.stat().st_size
    )


def _current_counts(cur, tables: list[str]) -> dict[str, int]:
    counts = {}
    for name in tables:
        cur.execute(f"SELECT count(*) FROM {sql_name(name)}")
        counts[name] = cur.fetchone()[0]
    return counts


def _resolve(cur, name: str) -> str | None:
    """A backup's table name as schema.table in this database (the seed's files are unqualified)."""
    regclass = sql_name(name) if "." in name else quote_ident(name)
    cur.execute(
        "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = to_regclass(%s)",
        (regclass,),
    )
    row = cur.fetchone()
    return row[0] if row else None


def calculate_diff(target: Target, backup_path: Path) -> DiffSummary:
    """Rows per table now and in the backup (the file is checked whole first)."""
    report = verify(backup_path)
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            resolved = {name: _resolve(cur, name) for name in report.tables}
            current = _current_counts(cur, [r for r in resolved.values() if r])
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
    total_current, total_backup = sum(current.values()), sum(report.tables.values())
    return DiffSummary(
        migration_version_current=version,
        migration_version_backup=report.metadata.migration_version,
        tables=diffs,
        missing_tables=[name for name, r in resolved.items() if not r],
        total_current_rows=total_current,
        total_backup_rows=total_backup,
        total_diff=total_backup - total_current,
    )


class _CopyInput:
    """A file for COPY FROM STDIN over an iterator of rows (JSON text), counting them."""

    def __init__(self, rows: Iterator[str]) -> None:
        self.rows = rows
        self.count = 0
        self.buffer = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.buffer) < size:
            chunk = []
            for row in self.rows:
                # COPY's text format: backslash is its escape character.
                chunk.append(row.replace("\\", "\\\\"))
                self.count += 1
                if len(chunk) >= _BATCH:
                    break
            if not chunk:
                break
            self.buffer += ("\n".join(chunk) + "\n").encode()
        if size < 0:
            size = len(self.buffer)
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    readline = read


def _insert_sql(table: Table, columns: list[str]) -> str:
    types = {c.name: c for c in table.columns}
    values = []
    for i, name in enumerate(columns):
        column = types[name]
        if column.type.endswith("[]"):
            # The seed's tool wrote arrays as JSON arrays; this kit writes their text.
            values.append(
                f"CASE json_typeof(r->{i}) WHEN 'array' THEN ARRAY(SELECT json_array_elements_text(r->{i}))::{column.type} "
                f"ELSE (r->>{i})::{column.type} END"
            )
        else:
            values.append(f"(r->>{i})::{column.type}")
    names = ", ".join(quote_ident(c) for c in columns)
    return f"INSERT INTO {sql_name(table.qualified)} ({names}) OVERRIDING SYSTEM VALUE SELECT {', '.join(values)} FROM devkit_restore_rows"


def restore_backup(
    target: Target,
    backup_path: Path,
    *,
    dry_run: bool = False,
    allow_other_version: bool = False,
    lock_timeout_s: float = 10,
    progress: Progress | None = None,
) -> tuple[DiffSummary, RestoreResult | None]:
    """Make the database equal to the backup, in ONE transaction: on any failure it is left as it was."""
    diff = calculate_diff(target, backup_path)  # reads and checks the whole file first
    if diff.missing_tables:
        raise BackupError(
            f"tables in the backup are missing here: {', '.join(diff.missing_tables)}",
            "migrate the database to the backup's version first (`invoke db.migrate`)",
        )
    if diff.migration_version_backup != diff.migration_version_current and not allow_other_version:
        raise BackupError(
            f"the backup is at migration {diff.migration_version_backup or '(none)'}, "
            f"the database at {diff.migration_version_current or '(none)'}",
            "migrate to the backup's version first, or pass --allow-other-version if the schemas match",
        )
    if dry_run:
        return diff, None

    conn = connect(target)
    restored_rows = 0
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = %s", (f"{int(lock_timeout_s * 1000)}ms",))
            tables = {t.qualified: t for t in app_tables(cur)}
            cur.execute("TRUNCATE " + ", ".join(sql_name(n) for n in tables))
            cur.execute("CREATE TEMP TABLE devkit_restore_rows (r json) ON COMMIT DROP")
            cur.execute("SET CONSTRAINTS ALL DEFERRED")
            resolved = {name: _resolve(cur, name) for name in diff.tables}
            with BackupReader(backup_path) as reader:
                if reader.metadata.migration_version is not None:
                    cur.execute(f"DELETE FROM {MIGRATION_TABLE}")
                    for version in reader.metadata.migration_version.split(","):
                        cur.execute(
                            f"INSERT INTO {MIGRATION_TABLE} (version_num) VALUES (%s)", (version,)
                        )
                for stream in _ordered(reader, cur, resolved):
                    name = resolved[stream.name]
                    table = tables[name]
                    here = {col.name for col in table.columns}
                    missing = [c for c in stream.header.columns if c not in here]
                    if missing:
                        raise BackupError(
                            f"{name} has no column {', '.join(missing)} here",
                            "migrate the database to the backup's version first",
                        )
                    cur.execute("TRUNCATE devkit_restore_rows")
                    source = _CopyInput(stream.rows)
                    cur.copy_expert("COPY devkit_restore_rows (r) FROM STDIN", source)
                    cur.execute(_insert_sql(table, stream.header.columns))
                    if cur.rowcount != source.count:
                        raise BackupError(
                            f"{name}: {cur.rowcount} rows loaded of {source.count}",
                            "nothing was changed",
                        )
                    restored_rows += source.count
                    if progress:
                        progress(name, source.count)
                for sequence, (last_value, is_called) in reader.metadata.sequences.items():
                    cur.execute(
                        "SELECT setval(to_regclass(%s), %s, %s) WHERE to_regclass(%s) IS NOT NULL",
                        (sql_name(sequence), last_value, is_called, sql_name(sequence)),
                    )
            restored = _current_counts(cur, list(resolved.values()))
            expected = {resolved[n]: d.backup_rows for n, d in diff.tables.items()}
            if restored != expected:
                raise BackupError(
                    "row counts after loading differ from the backup's", "nothing was changed"
                )
        conn.commit()
    except CorruptBackup:
        conn.rollback()
        raise
    except psycopg2.errors.LockNotAvailable:
        conn.rollback()
        raise BackupError(
            f"a table stayed locked by another session for {lock_timeout_s:g}s",
            "stop the app (or its long transaction) and retry",
        ) from None
    except psycopg2.Error as exc:
        conn.rollback()
        raise BackupError(
            f"restore failed, nothing was changed: {(exc.pgerror or str(exc)).strip().splitlines()[0]}",
            "see the message; the backup may not fit this schema",
        ) from None
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()
    _analyze(target, list(tables))
    return diff, RestoreResult(
        success=True, restored_tables=len(diff.tables), restored_rows=restored_rows
    )


def _ordered(reader: BackupReader, cur, resolved: dict[str, str]):
    """This kit's files are written parents first; the seed's are in memory and get sorted here.

    `resolved` maps the file's table names to schema.table in this database."""
    if reader.streamed:
        yield from reader.tables()
        return
    streams = {s.name: s for s in reader.tables()}
    back = {resolved[name]: name for name in streams}
    for name in load_order(sorted(back), foreign_keys(cur)):
        yield streams[back[name]]


def _analyze(target: Target, tables: list[str]) -> None:
    conn = connect(target)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in tables:
                cur.execute(f"ANALYZE {sql_name(name)}")
    finally:
        conn.close()
