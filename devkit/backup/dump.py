"""create_backup: every table of the app's schemas from one snapshot, read on parallel
connections (as pg_dump -j), streamed to a backup file (docs/ARCHITECTURE.md, "Backup")."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

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
from devkit.backup.codec import EXACT_OUTPUT
from devkit.backup.fileformat import BackupWriter
from devkit.backup.files import write_failed
from devkit.backup.models import BackupMetadata
from devkit.backup.readers import Selection, Selector, read_tables
from devkit.backup.session import BackupError, Progress, connect
from devkit.backup.target import Target


@dataclass(frozen=True)
class BackupSummary:
    path: Path | None  # None: written to a stream
    migration_version: str | None
    tables: dict[str, int]
    uncompressed_bytes: int
    compressed_bytes: int
    longest_line: int = 0  # set when a row is longer than readers take by default


# Tables read at once, each on a connection of its own that shares the backup's snapshot (as
# pg_dump -j): the server's work of printing the rows is the largest part of a backup.
_WORKERS = 2


def _snapshot_session(cur) -> None:
    cur.execute(EXACT_OUTPUT)
    # Row-level security must never hide rows from a backup: fail instead, as pg_dump does.
    cur.execute("SET row_security = off")


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
    json_rows: bool = False,
) -> BackupSummary:
    """Every table of the app's schemas, from one REPEATABLE READ snapshot, streamed to
    backup_YYYYMMDD_HHMMSS.backup.gz (written atomically, mode 0600). Every table is locked
    against TRUNCATE and DDL until the backup ends (see _locked_snapshot). SELECT: what to read
    of them when not everything as it is (a pull); its transaction may write temporary tables,
    every other backup's is READ ONLY. STREAM: the file is written there as the tables are read
    (output_dir then only holds their spools), and the summary has no path. JSON_ROWS: rows as
    JSON arrays (format 1, the earlier backup script's shape: `db.backup --format json`)."""
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
            cur.execute(
                "SELECT current_setting('server_version'), current_setting('server_version_num')"
            )
            server_version, server_number = cur.fetchone()
            server_number = int(server_number)
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
            writer = BackupWriter(output_dir, metadata, stream, json_rows)
        except OSError as exc:
            raise write_failed(output_dir, exc) from None
        try:
            # Parents first, so that a restore can load in file order.
            counts = read_tables(
                [c.cursor() for c in readers],
                [tables[n] for n in order],
                sizes,
                writer,
                progress,
                selection,
                split=server_number >= 140000,  # TID range scans
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
