"""create_backup: every table of the app's schemas from one snapshot, read on parallel
connections (as pg_dump -j), streamed to a backup file (docs/ARCHITECTURE.md, "Backup")."""

from __future__ import annotations

import contextlib
import io
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import psycopg2
from psycopg2 import errors, extensions

from devkit.backup.catalog import (
    Table,
    app_tables,
    dependencies,
    estimated_rows,
    foreign_keys,
    load_order,
    migration_version,
    sequences,
    sql_name,
    table_sizes,
)
from devkit.backup.codec import COPY_OUT, EXACT_OUTPUT, json_lines, select_list
from devkit.backup.fileformat import BackupWriter, TableSpool
from devkit.backup.files import write_failed
from devkit.backup.models import BackupMetadata
from devkit.backup.session import BLOCK, BackupError, Progress, connect
from devkit.backup.target import Target


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
            self.writer.write_block(json_lines(lines), rows)
            if self.on_rows:
                self.on_rows(rows)
        return size


@dataclass(frozen=True)
class BackupSummary:
    path: Path | None  # None: written to a stream
    migration_version: str | None
    tables: dict[str, int]
    uncompressed_bytes: int
    compressed_bytes: int
    longest_line: int = 0  # set when a row is longer than readers take by default


# Tables read at once, each on a connection of its own that shares the backup's snapshot (as
# pg_dump -j): the server's work of printing JSON is the largest part of a backup.
_WORKERS = 2


@dataclass(frozen=True)
class Selection:
    """What a backup reads when not every row of every table as it is (a pull, devkit/pull/):
    statements each reading connection runs first (in the snapshot), columns computed (masked)
    instead of read, and conditions on the rows of some tables (a subset). `leader_only`: the
    rows are read on the connection that made the selection (its temporary tables)."""

    session: tuple[tuple[str, tuple], ...] = ()
    computed: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    rows: Mapping[str, str] = field(default_factory=dict)
    leader_only: bool = False
    # A WITH clause before every COPY's SELECT, and FROM items after a table that its computed
    # columns read. A table read with any of these is aliased devkit_t (its conditions and
    # computed columns name it so).
    prefix: str = ""
    joins: Mapping[str, str] = field(default_factory=dict)


# Chooses the Selection, on the leader's connection inside the snapshot, from the tables in it.
Selector = Callable[[Any, dict[str, Table]], Selection]


def _copy_rows(
    cur, table: Table, out, progress: Progress | None, selection: Selection = Selection()
) -> None:
    """One table's rows, from COPY, into `out` (a BackupWriter or TableSpool)."""
    name = table.qualified
    sink = _RowSink(out, progress and (lambda rows: progress.advance(name, rows)))
    columns = select_list(table.columns, selection.computed.get(name))
    condition = selection.rows.get(name)
    where = f" WHERE {condition}" if condition else ""
    source, prefix = sql_name(name), ""
    if name in selection.computed or name in selection.joins or condition:  # as devkit_t
        source += f" AS devkit_t {selection.joins.get(name, '')}"
    if name in selection.joins:
        prefix = selection.prefix + " "
    query = f"{prefix}SELECT {columns} FROM ONLY {source}{where}"
    with io.BufferedWriter(sink, buffer_size=BLOCK) as buffered:
        cur.copy_expert(f"COPY ({query}) TO STDOUT {COPY_OUT}", buffered)
    if sink.pending:
        raise BackupError(f"{name}: COPY ended inside a row", "run the backup again")


def _snapshot_session(cur) -> None:
    cur.execute(EXACT_OUTPUT)
    # Row-level security must never hide rows from a backup: fail instead, as pg_dump does.
    cur.execute("SET row_security = off")


def _cost(table: Table, sizes: dict[int, int], selection: Selection) -> int:
    """How long reading TABLE takes, roughly: its size, times the columns computed on each row
    (a masked column's keyed hash costs about as much as printing the row)."""
    return sizes.get(table.oid, 0) * (1 + len(selection.computed.get(table.qualified, {})))


def _read_tables(
    cursors: list,
    tables: list[Table],
    sizes: dict[int, int],
    writer: BackupWriter,
    progress: Progress | None,
    selection: Selection = Selection(),
) -> dict[str, int]:
    """Read the tables on the connections (each in the backup's snapshot, holding its locks) and
    write them in the given order, from both ends: this thread takes the tables in file order on
    the first connection and writes each straight into the file as it is read (a stream's reader
    loads it meanwhile); each other connection takes the costliest table nobody has taken yet
    into a spool (so that no big table is left for one connection at the end), which this thread
    replays when the file reaches it."""
    claimed: set[str] = set()
    spooled: dict[str, Future] = {}  # the tables taken into spools, by name
    lock = threading.Lock()

    def claim(table: Table, spool: bool) -> bool:
        with lock:
            if table.qualified in claimed:
                return False
            claimed.add(table.qualified)
            if spool:
                spooled[table.qualified] = Future()
            return True

    by_cost = sorted(tables, key=lambda t: _cost(t, sizes, selection), reverse=True)

    def spool_next(cur) -> None:
        """On a connection of its own: the costliest table not yet taken, and so on."""
        for table in by_cost:
            if not claim(table, spool=True):
                continue
            future = spooled[table.qualified]
            spool = None
            try:
                spool = TableSpool(writer.directory)
                _copy_rows(cur, table, spool, progress, selection)
            except BaseException as exc:  # raised again when the file reaches the table
                future.set_exception(exc)
                if spool is not None:
                    with contextlib.suppress(OSError):  # a full disk fails its close too
                        spool.close()
                return
            future.set_result(spool)

    counts: dict[str, int] = {}
    helpers = [
        threading.Thread(target=spool_next, args=(cur,), name="backup-read", daemon=True)
        for cur in cursors[1:]
    ]
    mine = {t.qualified for t in tables[:1] if claim(t, spool=False)}  # before the others start
    for helper in helpers:
        helper.start()
    try:
        for table in tables:
            writer.begin_table(
                table.qualified, [c.name for c in table.columns], [c.type for c in table.columns]
            )
            if table.qualified in mine or claim(table, spool=False):
                _copy_rows(cursors[0], table, writer, progress, selection)
            else:
                spool = spooled[table.qualified].result()
                try:
                    writer.write_spool(spool)
                finally:
                    spool.close()
            counts[table.qualified] = writer.end_table()
    except BaseException:
        for cur in cursors[1:]:  # a spool being read is not waited for to its end
            with contextlib.suppress(psycopg2.Error):
                cur.connection.cancel()
        raise
    finally:
        with lock:  # nothing more is taken; what is being read ends, and its spool goes
            claimed.update(t.qualified for t in tables)
        for helper in helpers:
            helper.join()
        for name, future in spooled.items():
            if name not in counts and future.exception() is None:
                with contextlib.suppress(OSError):
                    future.result().close()
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
    select: Selector | None = None,
    stream: BinaryIO | None = None,
) -> BackupSummary:
    """Every table of the app's schemas, from one REPEATABLE READ snapshot, streamed to
    backup_YYYYMMDD_HHMMSS.backup.gz (written atomically, mode 0600). Every table is locked
    against TRUNCATE and DDL until the backup ends (see _locked_snapshot). SELECT: what to read
    of them when not everything as it is (a pull); its transaction may write temporary tables,
    every other backup's is READ ONLY. STREAM: the file is written there as the tables are read
    (output_dir then only holds their spools), and the summary has no path."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_failed(output_dir, exc) from None
    # One connection exports the snapshot and writes the metadata; _WORKERS read the rows.
    conns: list = []
    try:
        for _ in range(1 + _WORKERS):
            conns.append(connect(target, bulk=True))
        for conn in conns:
            conn.set_session(
                isolation_level=extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=select is None
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
            selection = select(cur, tables) if select else Selection()
        readers = [conn] if selection.leader_only else conns[1:]
        for reader in readers:
            with reader.cursor() as cur:
                for statement, parameters in selection.session:
                    cur.execute(statement, parameters)
        try:
            writer = BackupWriter(output_dir, metadata, stream)
        except OSError as exc:
            raise write_failed(output_dir, exc) from None
        try:
            # Parents first, so that a restore can load in file order.
            counts = _read_tables(
                [c.cursor() for c in readers],
                [tables[n] for n in order],
                sizes,
                writer,
                progress,
                selection,
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
        path.stat().st_size if path else 0,
        writer.longest_line,
    )
