"""restore_backup: a backup's tables loaded in ONE transaction (docs/ARCHITECTURE.md, "Restore").

The plan (which tables are emptied, in which order they load) is made and checked before the
first change; the rows go through COPY FROM STDIN: COPY text as it is in the file, or (format 1
files) parsed by devkit.backup.codec's RowParser and written by psycopg 3's Copy.write_row.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devkit.backup.catalog import (
    ForeignKey,
    Table,
    app_tables,
    dependencies,
    foreign_keys,
    indexes_to_set_aside,
    load_order,
    migration_table,
    migration_version,
    orphan_query,
    quote_ident,
    resolve_table,
    row_counts,
    sequence_owners,
    sql_name,
)
from devkit.backup.codec import COPY_IN, RowParser
from devkit.backup.diff import calculate_diff, restored_summary
from devkit.backup.fileformat import CorruptBackup, TableStream
from devkit.backup.models import DiffSummary, RestoreResult
from devkit.backup.reader import BackupReader
from devkit.backup.row_blocks import RowBlocks
from devkit.backup.session import BackupError, Progress, connect
from devkit.backup.target import Target

# psycopg logs what it ignores while it ends a broken COPY; the error raised says it all. Once,
# here: a handler added per restore would pile up in a process that restores many times.
logging.getLogger("psycopg").addHandler(logging.NullHandler())


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
            "migrate the database to the backup's version first (`devkit db.migrate`); a table "
            "of pg_catalog or another system schema is never restored",
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


def _may_disable_triggers(cur) -> bool:
    """Whether this session may load as pg_restore --disable-triggers does: the app's role is
    granted SET on session_replication_role (devkit/dbroles.py), or a superuser named by
    DATABASE_URL. The kit's own admin never loads: whatever the app's tables run (triggers, CHECK
    constraints, defaults) runs as the app's role."""
    cur.execute("SELECT has_parameter_privilege('session_replication_role', 'SET')")
    return bool(cur.fetchone()[0])


# A table whose first block of rows holds this many rows or more is loaded with its indexes set
# aside (catalog.indexes_to_set_aside) and built after: one sort instead of a B-tree insert per
# row. For values in random order (400,000 masked e-mails under a UNIQUE constraint) the
# inserts took 2.02 s with the index, 0.51 s without it plus 0.34 s to build it
# (benchmarks/README.md). Below it, a small table's drops and builds cost more than they save.
SET_ASIDE_ROWS = 1000


def _send(copy, rows: bytes | list, as_text: bool) -> None:
    """A block of COPY text as it is, or parsed rows each through Copy.write_row."""
    if as_text:
        copy.write(rows)
    else:
        for row in rows:
            copy.write_row(row)


def _load_table(
    cur, stream: TableStream, table: Table, progress: Progress | None, where: str
) -> int:
    """One table's rows into `table` (emptied before), through COPY; the rows loaded."""
    name = table.qualified
    types = {col.name: col.type for col in table.columns}
    missing = [c for c in stream.header.columns if c not in types]
    if missing:
        raise BackupError(
            f"{name} has no column {', '.join(missing)} here",
            "migrate the database to the backup's version first",
        )
    in_file = [types[c] for c in stream.header.columns]
    parser = (
        None
        if stream.copy_text
        else RowParser(in_file, [t.endswith("[]") for t in in_file], stream.scalars)
    )
    source = RowBlocks(stream, parser, f"{where}, table {name}")
    columns = ", ".join(quote_ident(c) for c in stream.header.columns)
    listed = f" ({columns})" if columns else ""
    aside = []
    try:
        blocks = iter(source)
        block = next(blocks, None)
        if block is not None and block[1] >= SET_ASIDE_ROWS:
            aside = indexes_to_set_aside(cur, table)
            for index in aside:
                cur.execute(index.drop)
        with cur.copy(f"COPY {sql_name(name)}{listed} FROM STDIN WITH {COPY_IN}") as copy:
            while block is not None:
                rows, count = block
                _send(copy, rows, parser is None)
                # Not held while the next block is read: after a long line, that keeps one
                # line's rows in memory at a time, not two.
                del rows, block
                if progress:
                    progress.advance(name, count)
                block = next(blocks, None)
    except UnicodeEncodeError as exc:  # a \\u escape of half a character (a surrogate)
        raise CorruptBackup(
            f"{where}, table {name}: a row is damaged ({exc.reason})", "use another backup"
        ) from None
    finally:
        source.close()
    # The server's count of rows loaded (the tables are locked since TRUNCATE).
    if cur.rowcount != source.count:
        raise BackupError(
            f"{name}: {cur.rowcount} rows loaded of {source.count} in the file",
            "nothing was changed",
        )
    for index in aside:
        cur.execute(index.build)
    return source.count


def _set_sequences(cur, sequences: dict[str, list], emptied: list[str]) -> None:
    """The backup's sequence values; a sequence that belongs to a table left as it is keeps its
    own."""
    owners = sequence_owners(cur)
    for sequence, (last_value, is_called) in sequences.items():
        owner = owners.get(sequence)
        if owner is not None and owner not in emptied:
            continue
        cur.execute(
            "SELECT setval(to_regclass(%s), %s, %s) WHERE to_regclass(%s) IS NOT NULL",
            (sql_name(sequence), last_value, is_called, sql_name(sequence)),
        )


def _set_migration_version(cur, version: str | None) -> None:
    if version is None:
        return
    table = migration_table(cur)
    if table is None:
        raise BackupError(
            f"the backup records migration {version}, and the database has no alembic_version table",
            "migrate the database first (`devkit db.migrate`), then restore",
        )
    cur.execute(f"DELETE FROM {sql_name(table)}")
    for one in version.split(","):
        cur.execute(f"INSERT INTO {sql_name(table)} (version_num) VALUES (%s)", (one,))


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
    from devkit.backup.heap import return_large_blocks

    return_large_blocks()  # rows of several MiB: not kept on the heap once sent
    diff = None
    if check_first or dry_run:
        diff = calculate_diff(target, backup_path, exact)
        _check_missing(diff.missing_tables)
        _check_version(
            diff.migration_version_backup, diff.migration_version_current, allow_other_version
        )

    import psycopg

    conn = connect(target, bulk=True, rows_in=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET LOCAL lock_timeout = %s", (f"{int(lock_timeout_s * 1000)}ms",))
            tables = {t.qualified: t for t in app_tables(cur)}
            keys = foreign_keys(cur)
            current_version = migration_version(cur)
            with BackupReader(backup_path) as reader:
                backup_version = reader.metadata.migration_version
                _check_version(backup_version, current_version, allow_other_version)
                # The file's table names -> the app's tables here.
                in_file = {name: resolve_table(cur, name, tables) for name in reader.table_names()}
                _check_missing([name for name, here in in_file.items() if not here])
                emptied = _to_empty(tables, list(in_file.values()), exact, keys)
                if dry_run:
                    return diff, None
                if progress:
                    progress.start(diff.total_backup_rows if diff else None)
                before = row_counts(cur, emptied)
                # As pg_restore --disable-triggers: no FK or user trigger fires per row, the
                # TRUNCATE's included. The foreign keys are then checked in bulk before COMMIT.
                bulk_checks = _may_disable_triggers(cur)
                if bulk_checks:
                    cur.execute("SET LOCAL session_replication_role = replica")
                else:
                    cur.execute("SET CONSTRAINTS ALL DEFERRED")
                cur.execute("TRUNCATE " + ", ".join(sql_name(n) for n in emptied))
                _set_migration_version(cur, backup_version)
                back = {here: name for name, here in in_file.items()}
                order = [back[n] for n in load_order(sorted(back), dependencies(keys))]
                loaded: dict[str, tuple[str, int]] = {}  # the file's name -> (table here, rows)
                # Each foreign key is checked once both its tables hold their rows: a child's
                # keys right after it loads, while the next table's rows are still arriving.
                unchecked = [k for k in keys if k.child in emptied or k.parent in emptied]
                settled = set(tables) - set(in_file.values())
                for stream in reader.tables(order):
                    name = in_file.get(stream.name)
                    if name is None:
                        raise CorruptBackup(
                            f"{backup_path.name}: table {stream.name} is not in its table list",
                            "use another backup",
                        )
                    rows = _load_table(cur, stream, tables[name], progress, backup_path.name)
                    loaded[stream.name] = (name, rows)
                    settled.add(name)
                    if bulk_checks:
                        unchecked = _check_foreign_keys(cur, unchecked, settled)
                # Every table the file lists (and so emptied) was loaded from it.
                unloaded = sorted(set(in_file) - set(loaded))
                if unloaded:
                    raise CorruptBackup(
                        f"{backup_path.name} lists {', '.join(unloaded)} but holds no rows section for it",
                        "use another backup; nothing was changed",
                    )
                # The loop has read the file to its end: its SHA-256 matched.
                _set_sequences(cur, reader.metadata.sequences, emptied)
            if bulk_checks:  # the rest, a partitioned table's keys too (not in `tables`)
                _check_foreign_keys(cur, unchecked, None)
        conn.commit()
    except BaseException as exc:
        with contextlib.suppress(psycopg.Error):  # a lost connection: the server rolled back
            conn.rollback()
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            raise BackupError(
                f"a table stayed locked by another session for {lock_timeout_s:g}s",
                "stop the app (or its long transaction) and retry",
            ) from None
        if isinstance(exc, psycopg.Error):
            raise BackupError(
                f"restore failed, nothing was changed: {str(exc).strip().splitlines()[0]}",
                "see the message; the backup may not fit this schema",
            ) from None
        raise
    finally:
        conn.close()
    _analyze(target, list(tables))
    others = [name for name in tables if name not in emptied]
    diff = restored_summary(before, loaded, current_version, backup_version, exact, others)
    rows = sum(count for _, count in loaded.values())
    return diff, RestoreResult(success=True, restored_tables=len(loaded), restored_rows=rows)


def _check_foreign_keys(cur, keys: list[ForeignKey], settled: set[str] | None) -> list[ForeignKey]:
    """Check the KEYS both of whose tables are SETTLED (hold their rows; None: every key); the
    others, left."""
    left = []
    for key in keys:
        if settled is not None and (key.child not in settled or key.parent not in settled):
            left.append(key)
            continue
        cur.execute(orphan_query(key))
        if cur.fetchone():
            raise BackupError(
                f"the backup breaks foreign key {key.name}: rows of {key.child} point at no row of {key.parent}",
                "nothing was changed; the backup does not fit this schema (or was edited)",
            )
    return left


def _analyze(target: Target, tables: list[str]) -> None:
    """ANALYZE the restored tables, two at a time on connections of their own."""

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
