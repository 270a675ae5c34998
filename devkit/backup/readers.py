"""The rows of a backup's tables, read on several connections that share its snapshot
(docs/ARCHITECTURE.md, "Backup", step 3): what is read (a Selection: a pull's masks and subset),
each table as parts (ranges of its pages), and the order they reach the file in."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import psycopg2

from devkit.backup.catalog import Table, sql_name
from devkit.backup.codec import copy_out, json_lines, select_list
from devkit.backup.fileformat import BackupWriter, TableSpool
from devkit.backup.session import BLOCK, BackupError, Progress


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
            self.writer.write_block(json_lines(lines) if self.writer.json_rows else lines, rows)
            if self.on_rows:
                self.on_rows(rows)
        return size


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


@dataclass(frozen=True)
class Part:
    """A table's rows, or those on a range of its pages: [first, end) (end None: to the last)."""

    table: Table
    pages: tuple[int, int | None] | None = None

    @property
    def key(self) -> tuple:
        return (self.table.qualified, self.pages)


def copy_rows(
    cur, part: Part, out, progress: Progress | None, selection: Selection = Selection()
) -> None:
    """One table's rows (or a part's), from COPY, into `out` (a BackupWriter or TableSpool)."""
    table = part.table
    name = table.qualified
    sink = _RowSink(out, progress and (lambda rows: progress.advance(name, rows)))
    columns = select_list(table.columns, selection.computed.get(name), out.json_rows)
    conditions = [selection.rows[name]] if name in selection.rows else []
    if part.pages is not None:  # read by a TID range scan (PostgreSQL 14 and later)
        first, end = part.pages
        conditions.append(f"devkit_t.ctid >= '({first},0)'::tid")
        if end is not None:
            conditions.append(f"devkit_t.ctid < '({end},0)'::tid")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    source, prefix = sql_name(name), ""
    if name in selection.computed or name in selection.joins or conditions:  # as devkit_t
        source += f" AS devkit_t {selection.joins.get(name, '')}"
    if name in selection.joins:
        prefix = selection.prefix + " "
    query = f"{prefix}SELECT {columns} FROM ONLY {source}{where}"
    with io.BufferedWriter(sink, buffer_size=BLOCK) as buffered:
        cur.copy_expert(f"COPY ({query}) TO STDOUT {copy_out(out.json_rows)}", buffered)
    if sink.pending:
        raise BackupError(f"{name}: COPY ended inside a row", "run the backup again")


# A table is read in parts, on several connections at once, only from this size on.
_SPLIT_FROM = 8 << 20
_PAGE = 8192


def parts_of(
    tables: list[Table], sizes: dict[int, int], selection: Selection, readers: int, split: bool
) -> dict[str, list[Part]]:
    """Each table as the parts it is read in: one, or (SPLIT) as many ranges of pages as it
    takes to keep any part from costing more than the readers' fair share, so that one big
    table does not leave a connection idle (pg_dump -j reads a table on one connection)."""
    total = sum(_cost(t, sizes, selection) for t in tables) or 1
    parts = {}
    for table in tables:
        count = 1
        if split and sizes.get(table.oid, 0) >= _SPLIT_FROM:
            count = min(readers, -(-_cost(table, sizes, selection) * readers // total))
        pages = sizes.get(table.oid, 0) // _PAGE
        bounds = [pages * n // count for n in range(count)] + [None]
        parts[table.qualified] = (
            [Part(table)]
            if count < 2
            else [Part(table, (bounds[n], bounds[n + 1])) for n in range(count)]
        )
    return parts


def _cost(table: Table, sizes: dict[int, int], selection: Selection) -> int:
    """How long reading TABLE takes, roughly: its size, times the columns computed on each row
    (a masked column's keyed hash costs about as much as printing the row)."""
    return sizes.get(table.oid, 0) * (1 + len(selection.computed.get(table.qualified, {})))


def read_tables(
    cursors: list,
    tables: list[Table],
    sizes: dict[int, int],
    writer: BackupWriter,
    progress: Progress | None,
    selection: Selection = Selection(),
    split: bool = False,
) -> dict[str, int]:
    """Read the tables on the connections (each in the backup's snapshot, holding its locks) and
    write them in the given order, from both ends: this thread takes the tables (and their
    parts, parts_of) in file order on the first connection and writes each straight into the file
    as it is read (a stream's reader loads it meanwhile); each other connection takes the
    costliest part nobody has taken yet into a spool (so that no big table is left for one
    connection at the end), which this thread replays when the file reaches it. While this
    thread waits for such a part, it takes parts into spools too."""
    claimed: set[tuple] = set()
    spooled: dict[tuple, Future] = {}  # the parts taken into spools
    lock = threading.Lock()

    def claim(part: Part, spool: bool) -> bool:
        with lock:
            if part.key in claimed:
                return False
            claimed.add(part.key)
            if spool:
                spooled[part.key] = Future()
            return True

    split = split and not writer.json_rows and len(cursors) > 1
    parts = parts_of(tables, sizes, selection, len(cursors), split)
    every = [part for table in tables for part in parts[table.qualified]]
    by_cost = sorted(
        every,
        key=lambda p: _cost(p.table, sizes, selection) / len(parts[p.table.qualified]),
        reverse=True,
    )

    def take_one(cur) -> bool:
        """Read the costliest part nobody has taken yet into a spool; False when none is left."""
        for part in by_cost:
            if not claim(part, spool=True):
                continue
            future = spooled[part.key]
            spool = None
            try:
                spool = TableSpool(writer.directory, writer.json_rows)
                copy_rows(cur, part, spool, progress, selection)
            except BaseException as exc:  # raised again when the file reaches the part
                future.set_exception(exc)
                if spool is not None:
                    with contextlib.suppress(OSError):  # a full disk fails its close too
                        spool.close()
                return False
            future.set_result(spool)
            return True
        return False

    def spool_next(cur) -> None:
        """On a connection of its own: the costliest part not yet taken, and so on."""
        while take_one(cur):
            pass

    def taken(part: Part) -> TableSpool:
        """The spool of a part another connection took; meanwhile this one takes parts too."""
        future = spooled[part.key]
        while not future.done() and take_one(cursors[0]):
            pass
        return future.result()

    counts: dict[str, int] = {}
    helpers = [
        threading.Thread(target=spool_next, args=(cur,), name="backup-read", daemon=True)
        for cur in cursors[1:]
    ]
    mine = {p.key for p in every[:1] if claim(p, spool=False)}  # before the others start
    for helper in helpers:
        helper.start()
    try:
        for table in tables:
            writer.begin_table(
                table.qualified, [c.name for c in table.columns], [c.type for c in table.columns]
            )
            for part in parts[table.qualified]:
                if part.key in mine or claim(part, spool=False):
                    copy_rows(cursors[0], part, writer, progress, selection)
                else:
                    spool = taken(part)
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
            claimed.update(p.key for p in every)
        for helper in helpers:
            helper.join()
        for (
            key,
            future,
        ) in spooled.items():  # the spools of tables not written (closed twice: no harm)
            if key[0] not in counts and future.exception() is None:
                with contextlib.suppress(OSError):
                    future.result().close()
    return counts
