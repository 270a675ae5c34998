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
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from devkit.envfile import Stack
from devkit.errors import BadArgument, DataConflict, DevkitError
from devkit.paths import remove_kit_file

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
_MARK = ".snapshot."
_RESTORING = ".restoring"  # the copy a restore makes before it swaps


class SnapshotError(DevkitError):
    """A snapshot could not be taken, restored or dropped; the app's database is as it was."""


@dataclass(frozen=True)
class Snapshot:
    name: str
    taken: str  # ISO 8601, UTC
    revision: str  # Alembic's, "" for none
    size: int  # bytes, PostgreSQL's copy
    redis: str  # the copy of Redis's keys (a path in redis_dir), "" for none
    auto: str = ""  # the task that took it before a change (db.migrate …), "" when taken by hand


@dataclass(frozen=True)
class Session:
    pid: int
    user: str
    application: str
    client: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.user}, {self.application or 'no application name'}, {self.client})"


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise BadArgument(
            f"snapshot name {name!r} is not allowed",
            "use lower-case letters, digits, - and _ (at most 40, starting with a letter or digit)",
        )
    return name


def database_of(stack: Stack, name: str) -> str:
    database = f"{stack.pg_database}{_MARK}{name}"
    if len(database.encode()) > 63:
        raise BadArgument(
            f"snapshot name {name!r} is too long for database {stack.pg_database}",
            f"use a name of at most {63 - len(stack.pg_database.encode()) - len(_MARK)} characters",
        )
    return database


def redis_dir(stack: Stack) -> Path:
    """Where the Redis copies of the stack's snapshots are kept (0700): the kit's state directory."""
    return Path.home() / ".local" / "state" / "devkit" / "snapshots" / stack.project


def redis_copy(stack: Stack, name: str) -> Path:
    """The file of snapshot NAME's Redis keys: made from the name, never read from elsewhere."""
    return redis_dir(stack) / f"{check_name(name)}.keys.gz"


def _connect(stack: Stack):
    """A connection to the stack's server's maintenance database as the kit's admin."""
    import psycopg2

    from devkit.backup.session import PINNED
    from devkit.dbroles import admin_url

    url = admin_url(stack, "postgres")
    if not url:
        raise SnapshotError(
            f"the admin password of project {stack.project} is not kept on this machine",
            "run `devkit setup` (it keeps it in ~/.local/state/devkit/stacks)",
        )
    try:
        return psycopg2.connect(
            url, application_name="devkit-snapshot", connect_timeout=10, options=PINNED
        )
    except psycopg2.OperationalError as exc:
        raise SnapshotError(
            f"cannot connect to postgres as the admin: {str(exc).strip().splitlines()[0]}",
            "is the stack up (`devkit up`)? `devkit doctor` diagnoses",
        ) from None


@contextmanager
def _admin(stack: Stack) -> Iterator:
    """An autocommit cursor on the server's maintenance database as the kit's admin: for
    queries, which change nothing."""
    conn = _connect(stack)
    conn.autocommit = True
    try:
        yield conn.cursor()
    finally:
        conn.close()


@contextmanager
def _changing(stack: Stack, say: Callable[[str], None]) -> Iterator:
    """_admin's cursor for a command that changes snapshots: one such command at a time per
    database (an advisory lock, released when the session ends, also by a killed process), and
    what an interrupted one left put right first and said (_recover)."""
    with _admin(stack) as cur:
        _lock(cur, stack)
        _recover(cur, stack, say)
        yield cur


def recover(stack: Stack, say: Callable[[str], None]) -> None:
    """Wait for a snapshot command running on the app's database (its lock), or put right what
    an interrupted one left (its database closed, half-made copies), saying what was done."""
    with _changing(stack, say):
        pass


LOCK_WAIT = 60.0  # seconds another snapshot command of the same database is waited for


def _lock(cur, stack: Stack) -> None:
    key = f"devkit-snapshots:{stack.pg_database}"
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,))
        if cur.fetchone()[0]:
            return
        if time.monotonic() > deadline:
            raise SnapshotError(
                f"another snapshot command on {stack.pg_database} has been running for over "
                f"{LOCK_WAIT:.0f} s",
                "let it finish, then run this again",
            )
        time.sleep(0.1)


def _recover(cur, stack: Stack, say: Callable[[str], None]) -> None:
    """Put right what a snapshot command killed half-way (its process, or its server session)
    left: the app's database closed to connections, or gone (db.reset between its rename and
    its new database), a restore's copy, a copy never marked as a snapshot. A snapshot that is
    marked is never removed here; nor is any copy while the app's database is missing."""
    app = stack.pg_database
    prefix = f"{app}{_MARK}"
    cur.execute(
        "SELECT datname, datallowconn, shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE datname = %s OR datname = %s OR starts_with(datname, %s)",
        (app, app + _RESTORING, prefix),
    )
    found = {name: (allowed, comment) for name, allowed, comment in cur.fetchall()}
    if app not in found:
        cur.execute(f"CREATE DATABASE {_quote(cur, app)} OWNER {_quote(cur, stack.pg_user)}")
        newest = next(iter(_list(cur, stack)), None)
        say(
            f"{app} was missing (a db.reset interrupted after setting it aside): made it again, "
            "empty"
            + (
                f"; the data is in snapshot {newest.name}: devkit db.snapshot.restore "
                f"{newest.name} --yes"
                if newest
                else ""
            )
        )
        return
    if not found[app][0]:
        cur.execute(f"ALTER DATABASE {_quote(cur, app)} WITH ALLOW_CONNECTIONS true")
        say(f"{app} was left closed to connections by an interrupted snapshot command: open again")
    if app + _RESTORING in found:
        cur.execute(f"DROP DATABASE {_quote(cur, app + _RESTORING)}")
        say(f"removed {app + _RESTORING}, the copy an interrupted restore left")
    for name, (_, comment) in found.items():
        if name.startswith(prefix) and not _marked(comment):
            cur.execute(f"DROP DATABASE {_quote(cur, name)}")
            say(
                f"removed the incomplete snapshot {name[len(prefix) :]} (its command was interrupted)"
            )
    # Snapshots an earlier kit left owned by the app's role (its undo and reset copies), which
    # could rewrite their comments: the admin's from now on.
    cur.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
        "AND datdba <> (SELECT oid FROM pg_roles WHERE rolname = current_user)",
        (prefix,),
    )
    for (name,) in cur.fetchall():
        cur.execute(f"ALTER DATABASE {_quote(cur, name)} OWNER TO CURRENT_USER")
    kept = {f"{s.name}.keys.gz" for s in _list(cur, stack)}
    directory = redis_dir(stack)
    for path in sorted(directory.glob("*.keys.gz")) + sorted(directory.glob(".*.partial")):
        if path.name not in kept and remove_kit_file(path, directory):
            say(f"removed {path.name}, a Redis copy of no snapshot (its command was interrupted)")


def _marked(comment: str | None) -> bool:
    try:
        return "devkit_snapshot" in json.loads(comment or "{}")
    except (ValueError, TypeError):
        return False


def _cleanup(stack: Stack, *statements: str) -> None:
    """Statements that undo a failed step, on a connection of their own (the command's may be
    the one that failed). Best effort: what they cannot undo, the next snapshot command's
    _recover does."""
    import psycopg2

    try:
        conn = _connect(stack)
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


def _quote(cur, name: str) -> str:
    from psycopg2 import sql

    return sql.Identifier(name).as_string(cur)


def _revision(stack: Stack) -> str:
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


def sessions(cur, database: str) -> list[Session]:
    cur.execute(
        "SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), "
        "coalesce(host(client_addr), 'local socket') FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid() ORDER BY pid",
        (database,),
    )
    return [Session(*row) for row in cur.fetchall()]


@contextmanager
def _closed(cur, stack: Stack, database: str, say: Callable[[str], None]) -> Iterator[None]:
    """DATABASE closed to new connections and its open ones ended (each named first) while the
    block runs; open again after it, whatever happens (on a new connection when the block lost
    its own; a killed process leaves it to the next command's _recover)."""
    quoted = _quote(cur, database)
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
            _cleanup(stack, reopen)


def _mark(cur, database: str, meta: dict) -> None:
    """Write what the listing shows into a snapshot's comment (a copy without it is incomplete:
    _recover removes it), and close it to connections."""
    quoted = _quote(cur, database)
    cur.execute(f"ALTER DATABASE {quoted} WITH ALLOW_CONNECTIONS false")
    cur.execute(f"COMMENT ON DATABASE {quoted} IS %s", (_comment(meta),))


def list_snapshots(stack: Stack) -> list[Snapshot]:
    """The stack's snapshots, newest first (a query: `recover` puts right what an interrupted
    command left)."""
    with _admin(stack) as cur:
        return _list(cur, stack)


def _list(cur, stack: Stack) -> list[Snapshot]:
    prefix = f"{stack.pg_database}{_MARK}"
    cur.execute(
        "SELECT datname, shobj_description(oid, 'pg_database'), pg_database_size(oid) "
        "FROM pg_database WHERE starts_with(datname, %s)",
        (prefix,),
    )
    found = []
    for database, comment, size in cur.fetchall():
        name = database[len(prefix) :]
        if not _marked(comment) or not NAME.fullmatch(name):
            continue  # a copy being made, or one an interrupted command left (_recover)
        meta = json.loads(comment)["devkit_snapshot"]
        redis = redis_copy(stack, name)
        found.append(
            Snapshot(
                name,
                str(meta.get("taken", "")),
                str(meta.get("revision", "")),
                size,
                str(redis) if redis.is_file() else "",
                str(meta.get("auto", "")),
            )
        )
    return sorted(found, key=lambda snapshot: snapshot.taken, reverse=True)


def _find(cur, stack: Stack, name: str) -> Snapshot:
    snapshot = next((s for s in _list(cur, stack) if s.name == name), None)
    if snapshot is None:
        raise DataConflict(
            f"no snapshot {name} of {stack.pg_database}", "devkit db.snapshots lists them"
        )
    return snapshot


def _unused(cur, stack: Stack, name: str) -> str:
    """NAME, or NAME-2, NAME-3 …: the first no snapshot has (two restores within a second)."""
    candidate, n = name, 1
    while _exists(cur, database_of(stack, candidate)):
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def _exists(cur, database: str) -> bool:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
    return cur.fetchone() is not None


def _save_redis(stack: Stack, name: str) -> str:
    """Redis's keys as redis_copy (0600, devkit/redis_keys.py); "" when Redis does not answer."""
    import os

    from devkit import redis_keys

    directory = redis_dir(stack)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    path = redis_copy(stack, name)
    try:
        redis_keys.save(stack, path)
    except redis_keys.RedisKeysError:  # Redis does not answer: the snapshot says it has no copy
        return ""
    return str(path)


def _load_redis(stack: Stack, path: str, previous: str) -> None:
    """Put the snapshot's keys back; when that fails half-way, the keys Redis had (PREVIOUS)."""
    from devkit import redis_keys

    try:
        redis_keys.load(stack, Path(path))
    except DevkitError as exc:
        if previous:
            redis_keys.load(stack, Path(previous))
        raise SnapshotError(
            f"the database was restored, but Redis's keys were not: {exc.cause}"
            + ("; Redis has the keys it had" if previous else ""),
            exc.hint,
        ) from None


def _now() -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}"


def _stamp() -> str:
    """When a snapshot was taken, to the millisecond: two taken within a second (a restore
    undone at once) still sort newest first, which the retention of automatic ones relies on."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def take(
    stack: Stack, name: str | None, say: Callable[[str], None] = print, auto: str = ""
) -> Snapshot:
    """Copy the app's database (and Redis's data) as snapshot NAME (default: the time). `auto`:
    the task taking it before a change (the retention of automatic snapshots applies to it)."""
    name = check_name(_now() if name is None else name)
    database = database_of(stack, name)
    with _changing(stack, say) as cur:
        if auto:
            name = _unused(cur, stack, name)
            database = database_of(stack, name)
        if _exists(cur, database):
            raise DataConflict(
                f"snapshot {name} exists already",
                f"choose another name, or drop it first: devkit db.snapshot.drop {name}",
            )
        revision = _revision(stack)
        redis = _save_redis(stack, name)
        meta = _meta(name, revision, redis, auto)
        started = time.monotonic()
        try:
            with _closed(cur, stack, stack.pg_database, say):
                cur.execute(
                    f"CREATE DATABASE {_quote(cur, database)} TEMPLATE "
                    f"{_quote(cur, stack.pg_database)} STRATEGY FILE_COPY"
                )
            cut_off = time.monotonic() - started
            _mark(cur, database, meta)
        except Exception as exc:
            # A copy that failed half-way (a full disk, a session ended) is removed by the
            # server itself; one made but not marked is removed here.
            _cleanup(stack, f"DROP DATABASE IF EXISTS {_quote(cur, database)}")
            _forget_redis(stack, name)
            raise _failed("taking the snapshot", exc) from None
        say(f"the app's database was closed for {cut_off:.2f}s")
        return _find(cur, stack, name)


def automatic_name(task: str) -> str:
    """The name of the snapshot TASK (db.migrate, db.reset …) takes before its change."""
    return f"before-{task.removeprefix('db.').replace('.', '-')}-{_now()}"


def prune_automatic(stack: Stack, keep: int, say: Callable[[str], None] = print) -> list[Snapshot]:
    """Drop the automatic snapshots (taken before a change, and the undo of a restore) older than
    the newest KEEP, each named as it goes; KEEP 0 drops none (devkit.snapshot_keep). Snapshots
    taken by hand are never dropped here."""
    if keep <= 0:
        return []
    with _changing(stack, say) as cur:
        dropped = [s for s in _list(cur, stack) if s.auto][keep:]
        for old in dropped:
            cur.execute(f"DROP DATABASE IF EXISTS {_quote(cur, database_of(stack, old.name))}")
            _forget_redis(stack, old.name)
            say(
                f"dropped the automatic snapshot {old.name} of {old.taken} "
                f"(devkit.snapshot_keep: the newest {keep} are kept)"
            )
        return dropped


def _swap(cur, statements: list[str], parameters: list[tuple] | None = None) -> None:
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


def _comment(meta: dict) -> str:
    return json.dumps({"devkit_snapshot": meta})


def _meta(name: str, revision: str, redis: str, auto: str) -> dict:
    """What a snapshot's comment records (the listing's columns), taken now. Whether Redis was
    copied is said for the reader; the copy itself is found by the snapshot's name."""
    return {
        "name": name, "taken": _stamp(), "revision": revision, "redis": bool(redis), "auto": auto
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

    with _changing(stack, say) as cur:
        name = _unused(cur, stack, automatic_name(task))
        database = database_of(stack, name)
        revision = _revision(stack)
        redis = _save_redis(stack, name)
        meta = _meta(name, revision, redis, task)
        app = _quote(cur, stack.pg_database)
        try:
            with _closed(cur, stack, stack.pg_database, say):
                _swap(
                    cur,
                    [
                        f"COMMENT ON DATABASE {app} IS %s",
                        f"ALTER DATABASE {app} RENAME TO {_quote(cur, database)}",
                        f"ALTER DATABASE {_quote(cur, database)} OWNER TO CURRENT_USER",
                    ],
                    [(_comment(meta),), (), ()],
                )
                try:
                    cur.execute(f"CREATE DATABASE {app} OWNER {_quote(cur, stack.pg_user)}")
                except Exception:
                    _cleanup(
                        stack,
                        f"ALTER DATABASE {_quote(cur, database)} RENAME TO {app}",
                        f"COMMENT ON DATABASE {app} IS NULL",
                    )
                    raise
        except Exception as exc:
            _forget_redis(stack, name)
            raise _failed("setting the database aside", exc) from None
        if redis and empty_redis:
            redis_keys.clear(stack)
        return _find(cur, stack, name)


def restore(stack: Stack, name: str, say: Callable[[str], None] = print) -> Snapshot:
    """Put snapshot NAME back: the app's database (swapped in one step) and Redis's data. The
    database it replaces is kept as a snapshot `undo-…`, which is returned."""
    database = database_of(stack, check_name(name))
    with _changing(stack, say) as cur:
        snapshot = _find(cur, stack, name)
        undo_name = _unused(cur, stack, f"undo-{_now()}")
        undo = database_of(stack, undo_name)
        restoring = stack.pg_database + _RESTORING
        revision = _revision(stack)
        try:
            cur.execute(
                f"CREATE DATABASE {_quote(cur, restoring)} TEMPLATE {_quote(cur, database)} "
                f"STRATEGY FILE_COPY OWNER {_quote(cur, stack.pg_user)}"
            )
        except Exception as exc:
            _cleanup(stack, f"DROP DATABASE IF EXISTS {_quote(cur, restoring)}")
            raise _failed("copying the snapshot", exc) from None
        redis_undo = _save_redis(stack, undo_name)
        meta = _meta(undo_name, revision, redis_undo, "db.snapshot.restore")
        app = _quote(cur, stack.pg_database)
        started = time.monotonic()
        try:
            with _closed(cur, stack, stack.pg_database, say):
                # The replaced database is marked as the undo snapshot in the same transaction.
                _swap(
                    cur,
                    [
                        f"COMMENT ON DATABASE {app} IS %s",
                        f"ALTER DATABASE {app} RENAME TO {_quote(cur, undo)}",
                        f"ALTER DATABASE {_quote(cur, undo)} OWNER TO CURRENT_USER",
                        f"ALTER DATABASE {_quote(cur, restoring)} RENAME TO {app}",
                    ],
                    [(_comment(meta),), (), (), ()],
                )
        except Exception as exc:
            _cleanup(stack, f"DROP DATABASE IF EXISTS {_quote(cur, restoring)}")
            _forget_redis(stack, undo_name)
            raise _failed("swapping in the snapshot", exc) from None
        say(f"the app's database was closed for {time.monotonic() - started:.2f}s")
        if snapshot.redis:
            _load_redis(stack, snapshot.redis, redis_undo)
        return _find(cur, stack, undo_name)


def put_back(stack: Stack, name: str, say: Callable[[str], None] = print) -> None:
    """Snapshot NAME swapped in again after a change that failed half-way: what it replaces (the
    failed change's state) is dropped, not kept as an undo."""
    undo = restore(stack, name, say)
    drop(stack, undo.name, say)


def drop(stack: Stack, name: str, say: Callable[[str], None] = print) -> Snapshot:
    database = database_of(stack, check_name(name))
    with _changing(stack, say) as cur:
        snapshot = _find(cur, stack, name)
        cur.execute(f"DROP DATABASE {_quote(cur, database)}")
        _forget_redis(stack, name)
        return snapshot


def _forget_redis(stack: Stack, name: str) -> None:
    remove_kit_file(redis_copy(stack, name), redis_dir(stack))


def forget_redis_copies(stack: Stack, gone: list[Snapshot]) -> None:
    """The Redis copies of snapshots whose database is gone (a reset deleted the volume)."""
    for snapshot in gone:
        _forget_redis(stack, snapshot.name)


def _failed(what: str, exc: Exception) -> SnapshotError:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, DevkitError):
        return SnapshotError(f"{what} failed: {exc.cause}", exc.hint)
    return SnapshotError(
        f"{what} failed, the app's database is as it was: {message}",
        "see the message (`devkit doctor` checks the stack and the disk)",
    )
