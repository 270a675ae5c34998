"""create_backup, calculate_diff, restore_backup (seed 004), streamed and transactional."""

from __future__ import annotations

import contextlib
import io
import json
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import psycopg2
from psycopg2 import errors, extensions

from devkit.backup.catalog import (
    MIGRATION_TABLE,
    ForeignKey,
    Table,
    app_tables,
    dependencies,
    estimated_rows,
    foreign_keys,
    load_order,
    migration_version,
    orphan_query,
    quote_ident,
    sequence_owners,
    sequences,
    sql_name,
    table_sizes,
)
from devkit.backup.fileformat import (
    BackupReader,
    BackupWriter,
    CorruptBackup,
    TableSpool,
    verify,
)
from devkit.backup.models import BackupMetadata, DiffSummary, RestoreResult, TableDiff
from devkit.backup.store import write_failed
from devkit.backup.target import Target
from devkit.errors import DevkitError

# Bytes of rows handed on at once, both ways: few large writes instead of one per row.
_BLOCK = 1 << 20
# Session settings that make the JSON of every value exact and independent of the server's defaults.
_EXACT_OUTPUT = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 1; SET bytea_output = 'hex'"
)


class Progress(Protocol):
    """Told how much work there is (a row estimate, or None) and how it advances."""

    def start(self, total_rows: int | None) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...


class BackupError(DevkitError):
    """A backup or restore could not be done; nothing was changed."""


def connect(target: Target):
    try:
        return psycopg2.connect(target.dsn, application_name="devkit-backup", connect_timeout=10)
    except psycopg2.ProgrammingError:  # libpq quotes the part it cannot parse: the password
        raise BackupError(
            "the database's connection settings cannot be parsed (their value is not shown: it holds the password)",
            "check DATABASE_URL / PG* variables (or run `invoke setup` to rewrite .env.local)",
        ) from None
    except psycopg2.OperationalError as exc:
        raise BackupError(
            f"cannot connect to database {target.database or '?'} on {target.host or 'localhost'}: "
            f"{str(exc).strip().splitlines()[0]}",
            "is the stack up (`invoke up`)? For a remote database check DATABASE_URL / PG* variables",
        ) from None


# The server prints each row as the file's row line: COPY's CSV output, ',' between columns and
# null for NULL, where every column prints as JSON: integers and booleans as their text,
# everything else through to_json (whose output holds no control character), the first column
# opening the array and the last closing it with "],". The quote character is \x02, which never
# occurs in that output: CSV wraps the fields holding a comma in it, and the client deletes it.
_COPY_JSON = "(FORMAT csv, QUOTE E'\\x02', NULL 'null')"
_QUOTE = b"\x02"


def _json_text(column) -> str:
    name = quote_ident(column.name)
    if column.type in ("smallint", "integer", "bigint", "boolean"):
        return f"{name}::text"
    return f"to_json({name}{'::text' if column.as_text else ''})::text"


def _select_list(table: Table) -> str:
    values = [_json_text(column) for column in table.columns]
    if not values:
        return "'[],'"
    values[-1] = f"coalesce({values[-1]}, 'null') || '],'"
    if len(values) > 1:
        values[0] = f"coalesce({values[0]}, 'null')"
    values[0] = f"'[' || {values[0]}"
    return ", ".join(values)


def _json_lines(lines: bytes) -> bytes:
    """COPY's rows as the file's row lines: only the quote characters go."""
    return lines.translate(None, _QUOTE) if _QUOTE in lines else lines


class _RowSink(io.RawIOBase):
    """Where COPY TO's rows go, through a 1 MiB io.BufferedWriter: psycopg2 writes one row per
    call (a C call into the buffer); whole rows reach the backup file a megabyte at a time."""

    def __init__(self, writer: TableSpool, on_rows: Callable[[int], None] | None) -> None:
        self.writer = writer
        self.on_rows = on_rows
        self.pending = b""

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        size = len(data)
        data = self.pending + bytes(data)
        cut = data.rfind(b"\n") + 1
        self.pending = data[cut:]
        if cut:
            lines = data[:cut]
            rows = lines.count(b"\n")
            self.writer.write_block(_json_lines(lines), rows)
            if self.on_rows:
                self.on_rows(rows)
        return size


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    migration_version: str | None
    tables: dict[str, int]
    uncompressed_bytes: int
    compressed_bytes: int
    longest_line: int = 0  # set when a row is longer than readers take by default


# Tables read at once, each on a connection of its own that shares the backup's snapshot (as
# pg_dump -j): the server's work of printing JSON is the largest part of a backup.
_WORKERS = 2


def _copy_rows(cur, table: Table, out, progress: Progress | None) -> None:
    """One table's rows, from COPY, into `out` (a BackupWriter or TableSpool)."""
    name = table.qualified
    sink = _RowSink(out, progress and (lambda rows: progress.advance(name, rows)))
    with io.BufferedWriter(sink, buffer_size=_BLOCK) as buffered:
        cur.copy_expert(
            f"COPY (SELECT {_select_list(table)} FROM ONLY {sql_name(name)}) TO STDOUT {_COPY_JSON}",
            buffered,
        )
    if sink.pending:
        raise BackupError(f"{name}: COPY ended inside a row", "run the backup again")


def _snapshot_session(cur) -> None:
    cur.execute(_EXACT_OUTPUT)
    # Row-level security must never hide rows from a backup: fail instead, as pg_dump does.
    cur.execute("SET row_security = off")


def _read_tables(
    cursors: list,
    tables: list[Table],
    sizes: dict[int, int],
    writer: BackupWriter,
    progress: Progress | None,
) -> dict[str, int]:
    """Read the tables on the worker connections (each in the backup's snapshot, holding its
    locks), the largest first (so that no big table is left for one connection at the end);
    write them in the given order."""
    idle: queue.SimpleQueue = queue.SimpleQueue()
    for cur in cursors:
        idle.put(cur)

    def dump(table: Table) -> TableSpool:
        cur = idle.get()
        spool = TableSpool(writer.path.parent)
        try:
            _copy_rows(cur, table, spool, progress)
        except BaseException:
            spool.close()
            raise
        finally:
            idle.put(cur)
        return spool

    counts: dict[str, int] = {}
    with ThreadPoolExecutor(max_workers=len(cursors), thread_name_prefix="backup-read") as pool:
        started = {
            t.qualified: pool.submit(dump, t)
            for t in sorted(tables, key=lambda t: sizes.get(t.oid, 0), reverse=True)
        }
        futures = [started[t.qualified] for t in tables]
        try:
            for table, future in zip(tables, futures, strict=True):
                spool = future.result()
                try:
                    writer.begin_table(
                        table.qualified,
                        [c.name for c in table.columns],
                        [c.type for c in table.columns],
                    )
                    writer.write_spool(spool)
                    counts[table.qualified] = writer.end_table()
                finally:
                    spool.close()
        except BaseException:
            for future in futures:
                future.cancel()
            for future in futures:
                if not future.cancelled() and future.exception() is None:
                    future.result().close()
            raise
    return counts


def _locked_snapshot(conns: list, lock_timeout_s: float) -> dict[str, Table]:
    """On every connection (the first exports the snapshot, the others import it and read the
    rows): lock every table IN ACCESS SHARE MODE, then take the snapshot; the tables in it. The
    locks are held until the backup ends.

    TRUNCATE (and a restore, which truncates) is not MVCC-safe: a table truncated while the backup
    runs would read as empty. With the locks it waits for the backup instead. Every connection
    takes its locks before the snapshot exists (a REPEATABLE READ snapshot is taken by the first
    query, not by LOCK or SET TRANSACTION SNAPSHOT), so nothing is truncated in between, and no
    reading connection ever asks for a lock later: behind a queued TRUNCATE it would wait for
    ever (pg_dump -j fails there instead). A lock that is not free at once (NOWAIT) lets go of
    every lock, lets the other session finish, and starts again, for up to `lock_timeout_s`.
    The table list is read before and checked inside the snapshot.
    """
    leader = conns[0]
    deadline = time.monotonic() + lock_timeout_s
    pause = 0.01
    while True:
        with leader.cursor() as cur:
            wanted = {t.qualified for t in app_tables(cur)}
        leader.rollback()
        try:
            for conn in conns:
                with conn.cursor() as cur:
                    _snapshot_session(cur)
                    if wanted:
                        cur.execute(
                            "LOCK TABLE "
                            + ", ".join(f"ONLY {sql_name(n)}" for n in sorted(wanted))
                            + " IN ACCESS SHARE MODE NOWAIT"
                        )
            with leader.cursor() as cur:
                cur.execute("SELECT pg_export_snapshot()")
                snapshot = cur.fetchone()[0]
                tables = {t.qualified: t for t in app_tables(cur)}
            if set(tables) == wanted:
                for conn in conns[1:]:
                    with conn.cursor() as cur:
                        cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
                return tables
        except (errors.LockNotAvailable, errors.UndefinedTable):
            pass
        for conn in conns:
            conn.rollback()
        if time.monotonic() >= deadline:
            raise BackupError(
                f"the tables stayed locked or kept changing for {lock_timeout_s:g}s "
                "(a restore, a migration or a TRUNCATE is running)",
                "run the backup again when it is done",
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def create_backup(
    target: Target,
    output_dir: Path,
    progress: Progress | None = None,
    lock_timeout_s: float = 10,
) -> BackupSummary:
    """Every table of the app's schemas, from one REPEATABLE READ READ ONLY snapshot, streamed to
    backup_YYYYMMDD_HHMMSS.backup.gz (written atomically, mode 0600). Every table is locked
    against TRUNCATE and DDL until the backup ends (see _locked_snapshot)."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failed(output_dir, exc) from None
    # One connection exports the snapshot and writes the metadata; _WORKERS read the rows.
    conns: list = []
    try:
        for _ in range(1 + _WORKERS):
            conns.append(connect(target))
        for conn in conns:
            conn.set_session(
                isolation_level=extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True
            )
        tables = _locked_snapshot(conns, lock_timeout_s)
        conn = conns[0]
        with conn.cursor() as cur:
            order = load_order(sorted(tables), dependencies(foreign_keys(cur)))
            cur.execute("SHOW server_version")
            server_version = cur.fetchone()[0]
            metadata = BackupMetadata(
                timestamp=datetime.now(UTC),
                migration_version=migration_version(cur),
                database_name=conn.info.dbname,
                database_host=target.host or conn.info.host,
                server_version=server_version,
                sequences=sequences(cur),
                tables=order,
            )
            if progress:
                progress.start(estimated_rows(cur, [t.oid for t in tables.values()]))
            sizes = table_sizes(cur, [t.oid for t in tables.values()])
        try:
            writer = BackupWriter(output_dir, metadata)
        except OSError as exc:
            raise write_failed(output_dir, exc) from None
        try:
            # Parents first, so that a restore can load in file order.
            counts = _read_tables(
                [c.cursor() for c in conns[1:]],
                [tables[n] for n in order],
                sizes,
                writer,
                progress,
            )
            path = writer.finish()
        except OSError as exc:
            writer.abort()
            raise write_failed(output_dir, exc) from None
        except BaseException:
            writer.abort()
            raise
    except errors.InsufficientPrivilege as exc:
        raise BackupError(
            f"not allowed to read every row: {exc.pgerror.strip()}", "back up as the tables' owner"
        ) from None
    finally:
        for conn in conns:
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()
            conn.close()
    return BackupSummary(
        path,
        metadata.migration_version,
        counts,
        writer.uncompressed,
        path.stat().st_size,
        writer.longest_line,
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


def _in(app_tables: Collection[str], name: str | None) -> str | None:
    """`name` when it is one of the app's tables: a backup never writes into a system catalog
    (pg_catalog.pg_class) or a schema that is not the app's."""
    return name if name in app_tables else None


def calculate_diff(target: Target, backup_path: Path, exact: bool = False) -> DiffSummary:
    """Rows per table now and in the backup, and the tables the backup does not have (the file
    is checked whole first)."""
    report = verify(backup_path)
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            app = {t.qualified for t in app_tables(cur)}
            resolved = {name: _in(app, _resolve(cur, name)) for name in report.tables}
            others = sorted(app - set(resolved.values()))
            current = _current_counts(cur, [r for r in resolved.values() if r] + others)
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


def _to_empty(
    here: dict[str, Table], in_file: list[str], exact: bool, keys: list[ForeignKey]
) -> list[str]:
    """The tables a restore truncates: the file's, and with `exact` every other one too.

    TRUNCATE refuses a table that a table it keeps references (and CASCADE would empty that one
    unasked): such a restore is refused before anything changes."""
    emptied = set(here) if exact else set(in_file)
    for key in keys:
        if key.parent in emptied and key.child not in emptied:
            raise BackupError(
                f"{key.child} is not in the backup but references {key.parent}, which the restore "
                f"replaces (foreign key {key.name})",
                f"restore with --exact to empty {key.child} too (the dry run lists every table it empties)",
            )
    return sorted(emptied)


def _tables_of(reader: BackupReader, path: Path) -> list[str]:
    """The file's table names before its rows are read: from the metadata, or one pass more."""
    if not reader.streamed:
        return list(reader.document_tables())
    if reader.metadata.tables is not None:
        return reader.metadata.tables
    return list(verify(path).tables)


# COPY's CSV format reads this kit's row lines almost as they are: top-level commas separate the
# values, JSON strings are quoted fields whose \" and \\ escapes CSV reads with ESCAPE '\', and an
# unquoted null is NULL while a quoted "null" stays a string.
# FREEZE: the tables were truncated in this transaction, so rows can be written frozen, and the
# foreign-key checks and ANALYZE that read them next set no hint bits (TRUNCATE already is not
# MVCC-safe for transactions older than the restore, FREEZE adds nothing to that).
_CSV = "(FORMAT csv, NULL 'null', ESCAPE '\\', FREEZE)"


def _plain(block: bytes) -> bool:
    """True when the JSON strings in `block` use no escapes but \\" and \\\\ (CSV reads those)."""
    return b"\\" not in block or b"\\" not in block.replace(b"\\\\", b"").replace(b'\\"', b"")


def _csv_lines(block: bytes) -> bytes:
    """Row lines of scalars, '[1,"a"],' and '[2,"b"]', as the CSV lines '1,"a"' and '2,"b"'."""
    body = block[1:-2] if block.endswith(b"]\n") else block[1:-3]
    return body.replace(b"],\n[", b"\n") + b"\n"


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _array_literal(items: list) -> str:
    """The seed's JSON arrays as PostgreSQL array input: {"a",NULL,{"b"}}."""
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
        elif isinstance(item, list):
            parts.append(_array_literal(item))
        else:
            parts.append(_quoted(_text(item)))
    return "{" + ",".join(parts) + "}"


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=float)  # objects into json columns


def _csv_row(line: bytes, arrays: list[bool]) -> str:
    """One row line parsed, for values CSV cannot take as they are (escapes like \\n, nesting).
    ValueError for a line that is not a JSON array of one value per column."""
    try:
        values = json.loads(line.rstrip(b",\n"), parse_float=Decimal)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(values, list):
        raise ValueError("not a JSON array")
    fields = []
    for value, is_array in zip(values, arrays, strict=True):
        if value is None:
            fields.append("null")
        elif isinstance(value, list) and is_array:
            fields.append(_quoted(_array_literal(value)))
        else:
            fields.append(_quoted(_text(value)))
    return ",".join(fields) + "\n"


class _CsvInput:
    """The file COPY FROM STDIN reads: a table's row blocks turned into CSV, rows counted.

    A thread reads, checks and converts the next blocks (decompression and hashing release the
    GIL) while psycopg2 sends the previous ones; a few blocks wait in between at most.
    """

    def __init__(
        self,
        blocks: Iterator[bytes],
        arrays: list[bool],
        scalars: bool,
        on_rows: Callable[[int], None] | None,
        where: str = "the backup",
    ) -> None:
        self.where = where
        self.arrays = arrays
        self.scalars = scalars  # this kit's files hold scalars only; the seed's may nest
        self.on_rows = on_rows
        self.count = 0
        self._done = False
        self._stop = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._thread = threading.Thread(
            target=self._produce, args=(blocks,), name="restore-reader", daemon=True
        )
        self._thread.start()

    def _convert(self, block: bytes) -> bytes:
        if self.scalars and _plain(block):
            return _csv_lines(block)
        if block.count(b"\n") == 1:  # one row (a long one has a block of its own): no copies
            return _csv_row(block, self.arrays).encode()
        return "".join(
            _csv_lines(line).decode()
            if self.scalars and _plain(line)
            else _csv_row(line, self.arrays)
            for line in block.splitlines(keepends=True)
        ).encode()

    def _produce(self, blocks: Iterator[bytes]) -> None:
        try:
            for block in blocks:
                if self._stop.is_set():
                    return
                if block:
                    rows = block.count(b"\n")
                    try:
                        converted = self._convert(block)
                    except ValueError as exc:
                        raise CorruptBackup(
                            f"{self.where}: a row is damaged ({exc})", "use another backup"
                        ) from None
                    del block  # not held while the converted rows wait to be sent
                    self._queue.put((converted, rows))
            self._queue.put(None)
        except BaseException as exc:  # raised again in the thread that reads
            self._queue.put(exc)

    def read(self, size: int = -1) -> bytes:
        if self._done:
            return b""
        item = self._queue.get()
        if item is None:
            self._done = True
            return b""
        if isinstance(item, BaseException):
            self._done = True
            raise item
        data, rows = item
        self.count += rows
        if self.on_rows:
            self.on_rows(rows)
        return data

    readline = read

    def close(self) -> None:
        """Stop the reading thread (after a failure, before the file is closed)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._queue.get(timeout=0.1)


def _check_version(backup: str | None, current: str | None, allow_other_version: bool) -> None:
    if backup != current and not allow_other_version:
        raise BackupError(
            f"the backup is at migration {backup or '(none)'}, the database at {current or '(none)'}",
            "migrate to the backup's version first, or pass --allow-other-version if the schemas match",
        )


def _check_missing(missing: list[str]) -> None:
    if missing:
        raise BackupError(
            f"tables in the backup are not tables of the app here: {', '.join(missing)}",
            "migrate the database to the backup's version first (`invoke db.migrate`); a table "
            "of pg_catalog or another system schema is never restored",
        )


def _is_superuser(cur) -> bool:
    cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    row = cur.fetchone()
    return bool(row and row[0])


def restore_backup(
    target: Target,
    backup_path: Path,
    *,
    dry_run: bool = False,
    allow_other_version: bool = False,
    exact: bool = False,
    lock_timeout_s: float = 10,
    progress: Progress | None = None,
    check_first: bool = True,
) -> tuple[DiffSummary, RestoreResult | None]:
    """Make the backup's tables equal to the file, in ONE transaction: on any failure the
    database is left as it was. Tables the file does not have are left as they are, or emptied
    too with `exact`.

    With check_first (and always for dry_run) the whole file is read and compared first. Without
    it the file is read once, while loading: a damaged file, a missing table or a failed SHA-256
    check then raises before COMMIT, so nothing changes either.
    """
    diff = None
    if check_first or dry_run:
        diff = calculate_diff(target, backup_path, exact)
        _check_missing(diff.missing_tables)
        _check_version(
            diff.migration_version_backup, diff.migration_version_current, allow_other_version
        )

    conn = connect(target)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = %s", (f"{int(lock_timeout_s * 1000)}ms",))
            tables = {t.qualified: t for t in app_tables(cur)}
            keys = foreign_keys(cur)
            current_version = migration_version(cur)
            with BackupReader(backup_path) as reader:
                _check_version(
                    reader.metadata.migration_version, current_version, allow_other_version
                )
                in_file = {
                    name: _in(tables, _resolve(cur, name))
                    for name in _tables_of(reader, backup_path)
                }
                _check_missing([name for name, here in in_file.items() if not here])
                emptied = _to_empty(tables, list(in_file.values()), exact, keys)
                if dry_run:
                    return diff, None
                if progress:
                    progress.start(diff.total_backup_rows if diff else None)
                before = _current_counts(cur, emptied)
                cur.execute("TRUNCATE " + ", ".join(sql_name(n) for n in emptied))
                # As pg_restore --disable-triggers: no FK or user trigger fires per row; a superuser
                # may. The foreign keys are then checked in bulk before COMMIT.
                bulk_checks = _is_superuser(cur)
                if bulk_checks:
                    cur.execute("SET LOCAL session_replication_role = replica")
                else:
                    cur.execute("SET CONSTRAINTS ALL DEFERRED")
                if reader.metadata.migration_version is not None:
                    cur.execute(f"DELETE FROM {MIGRATION_TABLE}")
                    for version in reader.metadata.migration_version.split(","):
                        cur.execute(
                            f"INSERT INTO {MIGRATION_TABLE} (version_num) VALUES (%s)", (version,)
                        )
                loaded: dict[str, tuple[str, int]] = {}  # the file's name -> (table here, rows)
                for stream in _ordered(reader, cur, keys):
                    name = in_file.get(stream.name)
                    if name is None:
                        raise CorruptBackup(
                            f"{backup_path.name}: table {stream.name} is not in its table list",
                            "use another backup",
                        )
                    table = tables[name]
                    types = {col.name: col.type for col in table.columns}
                    missing = [c for c in stream.header.columns if c not in types]
                    if missing:
                        raise BackupError(
                            f"{name} has no column {', '.join(missing)} here",
                            "migrate the database to the backup's version first",
                        )
                    source = _CsvInput(
                        stream.blocks,
                        [types[c].endswith("[]") for c in stream.header.columns],
                        reader.streamed,
                        progress and (lambda rows, n=name: progress.advance(n, rows)),
                        f"{backup_path.name}, table {name}",
                    )
                    columns = ", ".join(quote_ident(c) for c in stream.header.columns)
                    try:
                        cur.copy_expert(
                            f"COPY {sql_name(name)} ({columns}) FROM STDIN WITH {_CSV}",
                            source,
                            _BLOCK,
                        )
                    finally:
                        source.close()
                    # The server's count of rows loaded (the tables are locked since TRUNCATE).
                    if cur.rowcount != source.count:
                        raise BackupError(
                            f"{name}: {cur.rowcount} rows loaded of {source.count} in the file",
                            "nothing was changed",
                        )
                    loaded[stream.name] = (name, source.count)
                # Every table the file lists (and so emptied) was loaded from it.
                unloaded = sorted(set(in_file) - set(loaded))
                if unloaded:
                    raise CorruptBackup(
                        f"{backup_path.name} lists {', '.join(unloaded)} but holds no rows section for it",
                        "use another backup; nothing was changed",
                    )
                # The loop has read the file to its end: its SHA-256 matched. A sequence that
                # belongs to a table left as it is keeps its value.
                owners = sequence_owners(cur)
                for sequence, (last_value, is_called) in reader.metadata.sequences.items():
                    owner = owners.get(sequence)
                    if owner is not None and owner not in emptied:
                        continue
                    cur.execute(
                        "SELECT setval(to_regclass(%s), %s, %s) WHERE to_regclass(%s) IS NOT NULL",
                        (sql_name(sequence), last_value, is_called, sql_name(sequence)),
                    )
            if bulk_checks:
                _check_foreign_keys(
                    cur, [k for k in keys if k.child in emptied or k.parent in emptied]
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
    others = [name for name in tables if name not in emptied]
    diff = _summary(
        before, loaded, current_version, reader.metadata.migration_version, exact, others
    )
    rows = sum(count for _, count in loaded.values())
    return diff, RestoreResult(success=True, restored_tables=len(loaded), restored_rows=rows)


def _summary(
    before: dict[str, int],
    loaded: dict[str, tuple[str, int]],
    current_version: str | None,
    backup_version: str | None,
    exact: bool,
    others: list[str],
) -> DiffSummary:
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


def _check_foreign_keys(cur, keys: list[ForeignKey]) -> None:
    for key in keys:
        cur.execute(orphan_query(key))
        if cur.fetchone():
            raise BackupError(
                f"the backup breaks foreign key {key.name}: rows of {key.child} point at no row of {key.parent}",
                "nothing was changed; the backup does not fit this schema (or was edited)",
            )


def _ordered(reader: BackupReader, cur, keys: list[ForeignKey]):
    """This kit's files are written parents first; the seed's are in memory and get sorted here."""
    if reader.streamed:
        yield from reader.tables()
        return
    streams = {s.name: s for s in reader.tables()}
    back = {_resolve(cur, name) or name: name for name in streams}
    for name in load_order(sorted(back), dependencies(keys)):
        yield streams[back[name]]


def _analyze(target: Target, tables: list[str]) -> None:
    """ANALYZE the restored tables, two at a time on connections of their own."""
    from concurrent.futures import ThreadPoolExecutor

    def analyze(name: str) -> None:
        conn = connect(target)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(f"ANALYZE {sql_name(name)}")
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(analyze, tables))
