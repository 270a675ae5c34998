"""Snapshots of the app's database inside its own server (`db.snapshot` …): undo in about a second.

A snapshot is a copy of the app's database made at file level by the server itself
(`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`), far cheaper than a dump and a load, named
`<database>.snapshot.<name>` and kept closed to connections (nobody works in it by mistake, and it
can serve as a template at any time), and owned by the kit's admin, so that the app's role
cannot rewrite what the listing shows (name, time, migration version, the task that took it: the
database's comment). Redis's keys are copied beside it, key by key while the server runs
(devkit/redis_keys.py), into the kit's state directory, under a name made from the snapshot's:
no path is ever read from the database.

The admin only creates, renames, comments, closes and drops databases here, from the server's
maintenance database; what is read inside the app's database (its migration version) is read on
the app's own login (devkit/dbroles.py).

PostgreSQL copies a database at file level only while nobody else is connected to it. Taking or
restoring a snapshot therefore closes the app's database to new connections, ends the open ones
(named first), and opens it again at once: the app is cut off for the time of the copy (taking)
or of two renames (restoring: the copy is made beforehand, from the snapshot). A restore swaps the
databases in one transaction, and the database it replaces is kept as the snapshot `undo-…`.

The names, the catalog and the admin's session are devkit/snapshot_catalog.py's; the lock and
the recovery of an interrupted command devkit/snapshot_recovery.py's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from devkit import snapshot_catalog as catalog
from devkit import snapshot_spares
from devkit.envfile import Stack
from devkit.errors import DataConflict, DevkitError
from devkit.snapshot_catalog import (
    Snapshot,
    SnapshotError,
    check_name,
    database_of,
    sessions,
)
from devkit.snapshot_recovery import changing
from devkit.snapshot_redis import beside_redis_copy, forget_redis, load_redis, save_redis


def cleanup(stack: Stack, *statements: str) -> None:
    """Statements that undo a failed step, on a connection of their own (the command's may be
    the one that failed). Best effort: what they cannot undo, the next snapshot command's
    _recover does."""
    import psycopg2

    try:
        conn = catalog.connect(stack)
    except SnapshotError:
        return
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    except psycopg2.Error:
        pass
    finally:
        conn.close()


def app_revision(stack: Stack) -> str:
    """The Alembic revision(s) of the app's database, "" when it has none: read on the app's own
    login (the table is the app's: the admin never reads it)."""
    from devkit.backup.catalog import migration_version
    from devkit.backup.session import connect
    from devkit.backup.target import stack_target

    conn = connect(stack_target(stack.values))
    try:
        with conn.cursor() as cur:
            return migration_version(cur) or ""
    finally:
        conn.close()


@contextmanager
def closed(cur, stack: Stack, database: str, say: Callable[[str], None]) -> Iterator[None]:
    """DATABASE closed to new connections and its open ones ended (each named first) while the
    block runs; open again after it, whatever happens (on a new connection when the block lost
    its own; a killed process leaves it to the next command's _recover)."""
    quoted = catalog.quote(cur, database)
    cur.execute(f"ALTER DATABASE {quoted} WITH ALLOW_CONNECTIONS false")
    try:
        found = sessions(cur, database)
        for session in found:
            say(f"ending the session {session} on {database}")
        if found:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )
        deadline = time.monotonic() + 10
        while sessions(cur, database):
            if time.monotonic() > deadline:
                raise SnapshotError(
                    f"sessions on {database} did not end within 10 s",
                    "see them: devkit db.psql -c 'SELECT * FROM pg_stat_activity'; then try again",
                )
            time.sleep(0.02)
        yield
    finally:
        reopen = f"ALTER DATABASE {quoted} WITH ALLOW_CONNECTIONS true"
        try:
            cur.execute(reopen)
        except Exception:  # the block lost its connection (its session was ended)
            cleanup(stack, reopen)


def list_snapshots(stack: Stack) -> list[Snapshot]:
    """The stack's snapshots, newest first (a query: `recover` puts right what an interrupted
    command left)."""
    with catalog.admin_cursor(stack) as cur:
        return catalog.listed(cur, stack)


def now() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}"


def stamp() -> str:
    """When a snapshot was taken, to the millisecond: two taken within a second (a restore
    undone at once) still sort newest first, which the retention of automatic ones relies on."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def take(
    stack: Stack, name: str | None, say: Callable[[str], None] = print, auto: str = ""
) -> Snapshot:
    """Copy the app's database (and Redis's data) as snapshot NAME (default: the time). `auto`:
    the task taking it before a change (the retention of automatic snapshots applies to it)."""
    name = check_name(now() if name is None else name)
    database = database_of(stack, name)
    with changing(stack, say) as cur:
        if auto:
            name = catalog.unused(cur, stack, name)
            database = database_of(stack, name)
        if catalog.exists(cur, database):
            raise DataConflict(
                f"snapshot {name} exists already",
                f"choose another name, or drop it first: devkit db.snapshot.drop {name}",
            )
        revision = app_revision(stack)
        started = time.monotonic()

        def copy() -> float:
            with closed(cur, stack, stack.pg_database, say):
                cur.execute(
                    f"CREATE DATABASE {catalog.quote(cur, database)} TEMPLATE "
                    f"{catalog.quote(cur, stack.pg_database)} STRATEGY FILE_COPY"
                )
            return time.monotonic() - started

        try:
            cut_off, redis = beside_redis_copy(stack, name, copy)
            mark(cur, database, snapshot_meta(name, revision, redis, auto))
        except Exception as exc:
            # A copy that failed half-way (a full disk, a session ended) is removed by the
            # server itself; one made but not marked is removed here.
            cleanup(stack, f"DROP DATABASE IF EXISTS {catalog.quote(cur, database)}")
            forget_redis(stack, name)
            raise failed("taking the snapshot", exc) from None
        say(f"the app's database was closed for {cut_off:.2f}s")
        return catalog.find(cur, stack, name)


def automatic_name(task: str) -> str:
    """The name of the snapshot TASK (db.migrate, db.reset …) takes before its change."""
    return f"before-{task.removeprefix('db.').replace('.', '-')}-{now()}"


def prune_automatic(stack: Stack, keep: int, say: Callable[[str], None] = print) -> list[Snapshot]:
    """Drop the automatic snapshots (taken before a change, and the undo of a restore) older than
    the newest KEEP, each named as it goes; KEEP 0 drops none (devkit.snapshot_keep). Snapshots
    taken by hand are never dropped here."""
    if keep <= 0:
        return []
    with changing(stack, say) as cur:
        return pruned(cur, stack, keep, say)


def pruned(cur, stack: Stack, keep: int, say: Callable[[str], None]) -> list[Snapshot]:
    """prune_automatic's work, in the session of a command that holds the lock."""
    if keep <= 0:
        return []
    dropped = [s for s in catalog.listed(cur, stack) if s.auto and not s.branch][keep:]
    for old in dropped:
        drop_database(cur, stack, old.name)
        say(
            f"dropped the automatic snapshot {old.name} of {old.taken} "
            f"(devkit.snapshot_keep: the newest {keep} are kept)"
        )
    return dropped


def swap(cur, statements: list[str], parameters: list[tuple] | None = None) -> None:
    """STATEMENTS in one transaction: all or none."""
    cur.execute("BEGIN")
    try:
        for statement, values in zip(statements, parameters or [()] * len(statements), strict=True):
            cur.execute(statement, values or None)
        cur.execute("COMMIT")
    except Exception:
        if not cur.connection.closed:
            cur.execute("ROLLBACK")
        raise


def mark(cur, database: str, meta: dict) -> None:
    """Write what the listing shows into a snapshot's comment (a copy without it is incomplete:
    _recover removes it), and close it to connections."""
    quoted = catalog.quote(cur, database)
    cur.execute(f"ALTER DATABASE {quoted} WITH ALLOW_CONNECTIONS false")
    cur.execute(f"COMMENT ON DATABASE {quoted} IS %s", (comment_text(meta),))


def comment_text(meta: dict) -> str:
    return json.dumps({"devkit_snapshot": meta})


def snapshot_meta(name: str, revision: str, redis: str, auto: str) -> dict:
    """What a snapshot's comment records (the listing's columns), taken now. Whether Redis was
    copied is said for the reader; the copy itself is found by the snapshot's name."""
    return {
        "name": name, "taken": stamp(), "revision": revision, "redis": bool(redis), "auto": auto
    }  # fmt: skip


def set_aside(
    stack: Stack, task: str, say: Callable[[str], None] = print, empty_redis: bool = True
) -> Snapshot:
    """The app's database becomes an automatic snapshot as it is (renamed: nothing is copied) and
    an empty one owned by the app takes its place; Redis's keys are kept with the snapshot, then
    emptied (unless not `empty_redis`: db.restore --clean of a dump, which holds no Redis data).
    For db.reset: its undo is `db.snapshot.restore`. The snapshot is marked in the same
    transaction as the rename: killed after it, the next command makes the empty database
    (_recover) and keeps the snapshot."""
    from devkit import redis_keys

    with changing(stack, say) as cur:
        name = catalog.unused(cur, stack, automatic_name(task))
        database = database_of(stack, name)
        revision = app_revision(stack)
        redis = save_redis(stack, name)
        meta = snapshot_meta(name, revision, redis, task)
        app = catalog.quote(cur, stack.pg_database)
        try:
            with closed(cur, stack, stack.pg_database, say):
                swap(
                    cur,
                    [
                        f"COMMENT ON DATABASE {app} IS %s",
                        f"ALTER DATABASE {app} RENAME TO {catalog.quote(cur, database)}",
                        f"ALTER DATABASE {catalog.quote(cur, database)} OWNER TO CURRENT_USER",
                    ],
                    [(comment_text(meta),), (), ()],
                )
                try:
                    cur.execute(f"CREATE DATABASE {app} OWNER {catalog.quote(cur, stack.pg_user)}")
                except Exception:
                    cleanup(
                        stack,
                        f"ALTER DATABASE {catalog.quote(cur, database)} RENAME TO {app}",
                        f"COMMENT ON DATABASE {app} IS NULL",
                    )
                    raise
        except Exception as exc:
            forget_redis(stack, name)
            raise failed("setting the database aside", exc) from None
        if redis and empty_redis:
            redis_keys.clear(stack)
        return catalog.find(cur, stack, name)


def restore(
    stack: Stack, name: str, say: Callable[[str], None] = print, keep: int = 0
) -> tuple[Snapshot, list[Snapshot]]:
    """Put snapshot NAME back: the app's database (swapped in one step) and Redis's data. The
    database it replaces is kept as a snapshot `undo-…`, which is returned, with the automatic
    snapshots beyond the newest KEEP then dropped (`pruned`: only once the restore succeeded,
    in the same session). The snapshot's ready copy is swapped in when there is one
    (devkit/snapshot_spares.py), else a copy is made now."""
    database = database_of(stack, check_name(name))
    with changing(stack, say) as cur:
        snapshot = catalog.find(cur, stack, name)
        undo_name = catalog.unused(cur, stack, f"undo-{now()}")
        undo = database_of(stack, undo_name)
        ready = snapshot_spares.ready(cur, stack, name)

        def copy() -> tuple[str, str]:
            made = ready or copy_for_app(cur, stack, database, "copying the snapshot")
            return made, app_revision(stack)

        (restoring, revision), redis_undo = beside_redis_copy(stack, undo_name, copy)
        meta = snapshot_meta(undo_name, revision, redis_undo, "db.snapshot.restore")
        app = catalog.quote(cur, stack.pg_database)
        started = time.monotonic()
        try:
            with closed(cur, stack, stack.pg_database, say):
                # The replaced database is marked as the undo snapshot in the same transaction.
                swap(
                    cur,
                    [
                        f"COMMENT ON DATABASE {app} IS %s",
                        f"ALTER DATABASE {app} RENAME TO {catalog.quote(cur, undo)}",
                        f"ALTER DATABASE {catalog.quote(cur, undo)} OWNER TO CURRENT_USER",
                        f"ALTER DATABASE {catalog.quote(cur, restoring)} RENAME TO {app}",
                        f"ALTER DATABASE {app} OWNER TO {catalog.quote(cur, stack.pg_user)}",
                    ],
                    [(comment_text(meta),), (), (), (), ()],
                )
        except Exception as exc:
            if not ready:  # a ready copy stays one: the swap was rolled back
                cleanup(stack, f"DROP DATABASE IF EXISTS {catalog.quote(cur, restoring)}")
            forget_redis(stack, undo_name)
            raise failed("swapping in the snapshot", exc) from None
        say(f"the app's database was closed for {time.monotonic() - started:.2f}s")
        if snapshot.redis:
            load_redis(stack, snapshot.redis, redis_undo)
        return catalog.find(cur, stack, undo_name), pruned(cur, stack, keep, say)


def copy_for_app(cur, stack: Stack, source: str, what: str) -> str:
    """A file-level copy of the kept database SOURCE (a snapshot, another branch's database),
    owned by the app's role, made while the app still works, to be swapped in next: its name
    (`<database>.restoring`). One a killed command left is dropped by the recovery; one that
    failed half-way here, at once (WHAT names the step in the error)."""
    restoring = stack.pg_database + catalog.RESTORING
    try:
        cur.execute(
            f"CREATE DATABASE {catalog.quote(cur, restoring)} TEMPLATE {catalog.quote(cur, source)} "
            f"STRATEGY FILE_COPY OWNER {catalog.quote(cur, stack.pg_user)}"
        )
    except Exception as exc:
        cleanup(stack, f"DROP DATABASE IF EXISTS {catalog.quote(cur, restoring)}")
        raise failed(what, exc) from None
    return restoring


def put_back(stack: Stack, name: str, say: Callable[[str], None] = print) -> None:
    """Snapshot NAME swapped in again after a change that failed half-way: what it replaces (the
    failed change's state) is dropped, not kept as an undo."""
    undo, _ = restore(stack, name, say)
    drop(stack, undo.name, say)


def drop(stack: Stack, name: str, say: Callable[[str], None] = print) -> Snapshot:
    check_name(name)
    with changing(stack, say) as cur:
        snapshot = catalog.find(cur, stack, name)
        drop_database(cur, stack, name)
        return snapshot


def drop_database(cur, stack: Stack, name: str) -> None:
    """Snapshot NAME's database, then its ready copy (the drop waits for one being made from
    it), then its copy of Redis's keys."""
    cur.execute(f"DROP DATABASE IF EXISTS {catalog.quote(cur, database_of(stack, name))}")
    snapshot_spares.drop_spare(cur, stack, name)
    forget_redis(stack, name)


def failed(what: str, exc: Exception) -> SnapshotError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, DevkitError):
        return SnapshotError(f"{what} failed: {exc.cause}", exc.hint)
    return SnapshotError(
        f"{what} failed, the app's database is as it was: {message}",
        "see the message (`devkit doctor` checks the stack and the disk)",
    )
