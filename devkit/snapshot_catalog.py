"""How the kit keeps snapshots (devkit/snapshots.py): their names, the databases that hold them
(`<database>.snapshot.<name>`, marked by a JSON comment), the admin's session on the server's
maintenance database, the listing read from that catalog, and the files of their Redis copies.
Queries only: nothing here changes a database."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devkit.envfile import Stack
from devkit.errors import BadArgument, DataConflict, DevkitError

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


MARK = ".snapshot."


RESTORING = ".restoring"  # the copy a restore makes before it swaps


SPARE = ".spare."  # a snapshot's ready copy (devkit/snapshot_spares.py)


class SnapshotError(DevkitError):
    """A snapshot could not be taken, restored or dropped; the app's database is as it was."""


class AdminUnreachable(SnapshotError):
    """The kit's admin cannot reach the stack's server (down, or its password not kept here)."""


@dataclass(frozen=True)
class Snapshot:
    name: str
    taken: str  # ISO 8601, UTC
    revision: str  # Alembic's, "" for none
    size: int  # bytes, PostgreSQL's copy
    redis: str  # the copy of Redis's keys (a path in redis_dir), "" for none
    auto: str = ""  # the task that took it before a change (db.migrate …), "" when taken by hand
    branch: str = ""  # the git branch whose database it is, set aside (devkit/branches.py)
    used: str = ""  # when that branch's database was last in place (ISO 8601, UTC)
    spare: int = 0  # bytes of its ready copy (devkit/snapshot_spares.py), 0 for none

    @property
    def on_disk(self) -> int:
        """What it takes in the server's disk: the copy and its ready copy."""
        return self.size + self.spare


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
    database = f"{stack.pg_database}{MARK}{name}"
    if len(database.encode()) > 63:
        raise BadArgument(
            f"snapshot name {name!r} is too long for database {stack.pg_database}",
            f"use a name of at most {63 - len(stack.pg_database.encode()) - len(MARK)} characters",
        )
    return database


def spare_of(stack: Stack, name: str) -> str:
    """The database of snapshot NAME's ready copy (shorter than the snapshot's: it always fits)."""
    return f"{stack.pg_database}{SPARE}{check_name(name)}"


def redis_dir(stack: Stack) -> Path:
    """Where the Redis copies of the stack's snapshots are kept (0700): the kit's state directory."""
    from devkit.paths import state_dir

    return state_dir() / "snapshots" / stack.project


def redis_copy(stack: Stack, name: str) -> Path:
    """The file of snapshot NAME's Redis keys: made from the name, never read from elsewhere."""
    return redis_dir(stack) / f"{check_name(name)}.keys.gz"


def connect(stack: Stack, application: str = "devkit-snapshot"):
    """A connection to the stack's server's maintenance database as the kit's admin (named
    APPLICATION in pg_stat_activity)."""
    import psycopg2

    from devkit.admin_password import admin_url
    from devkit.backup.session import PINNED

    url = admin_url(stack, "postgres")
    if not url:
        raise AdminUnreachable(
            f"the admin password of project {stack.project} is not kept on this machine",
            "run `devkit setup` (it keeps it in ~/.local/state/devkit/stacks)",
        )
    try:
        return psycopg2.connect(
            url, application_name=application, connect_timeout=10, options=PINNED
        )
    except psycopg2.OperationalError as exc:
        raise AdminUnreachable(
            f"cannot connect to postgres as the admin: {str(exc).strip().splitlines()[0]}",
            "is the stack up (`devkit up`)? `devkit doctor` diagnoses",
        ) from None


@contextmanager
def admin_cursor(stack: Stack, application: str = "devkit-snapshot") -> Iterator:
    """An autocommit cursor on the server's maintenance database as the kit's admin (`connect`);
    the commands that change snapshots take it through snapshot_recovery.changing."""
    conn = connect(stack, application)
    conn.autocommit = True
    try:
        yield conn.cursor()
    finally:
        conn.close()


def marked(comment: str | None) -> bool:
    try:
        return "devkit_snapshot" in json.loads(comment or "{}")
    except (ValueError, TypeError):
        return False


def quote(cur, name: str) -> str:
    from psycopg2 import sql

    return sql.Identifier(name).as_string(cur)


def sessions(cur, database: str) -> list[Session]:
    cur.execute(
        "SELECT pid, coalesce(usename, ''), coalesce(application_name, ''), "
        "coalesce(host(client_addr), 'local socket') FROM pg_stat_activity "
        "WHERE datname = %s AND pid <> pg_backend_pid() ORDER BY pid",
        (database,),
    )
    return [Session(*row) for row in cur.fetchall()]


def listed(cur, stack: Stack, name: str = "") -> list[Snapshot]:
    """The stack's snapshots, newest first; only snapshot NAME when given (sizes are read from
    the disk: one database's is cheaper than all of them)."""
    prefix, spares = f"{stack.pg_database}{MARK}", f"{stack.pg_database}{SPARE}"
    if name:
        where, values = "datname = %s OR datname = %s", (prefix + name, spares + name)
    else:
        where, values = "starts_with(datname, %s) OR starts_with(datname, %s)", (prefix, spares)
    cur.execute(
        "SELECT datname, shobj_description(oid, 'pg_database'), pg_database_size(oid) "
        f"FROM pg_database WHERE {where}",
        values,
    )
    rows = cur.fetchall()
    spare = {name[len(spares) :]: size for name, _, size in rows if name.startswith(spares)}
    found = []
    for database, comment, size in rows:
        if not database.startswith(prefix):
            continue
        name = database[len(prefix) :]
        if not marked(comment) or not NAME.fullmatch(name):
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
                str(meta.get("branch", "")),
                str(meta.get("used", "")),
                spare.get(name, 0),
            )
        )
    return sorted(found, key=lambda snapshot: snapshot.taken, reverse=True)


def find(cur, stack: Stack, name: str) -> Snapshot:
    snapshot = next((s for s in listed(cur, stack, name) if s.name == name), None)
    if snapshot is None:
        raise DataConflict(
            f"no snapshot {name} of {stack.pg_database}", "devkit db.snapshots lists them"
        )
    return snapshot


def marked_names(cur, stack: Stack) -> set[str]:
    """The names of the stack's snapshots (listed's, without reading their sizes)."""
    prefix = f"{stack.pg_database}{MARK}"
    cur.execute(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE starts_with(datname, %s)",
        (prefix,),
    )
    names = ((database[len(prefix) :], comment) for database, comment in cur.fetchall())
    return {name for name, comment in names if marked(comment) and NAME.fullmatch(name)}


def unused(cur, stack: Stack, name: str) -> str:
    """NAME, or NAME-2, NAME-3 …: the first no snapshot has (two restores within a second)."""
    candidate, n = name, 1
    while exists(cur, database_of(stack, candidate)):
        n += 1
        candidate = f"{name}-{n}"
    return candidate


def advisory_lock(cur, key: str, wait: float, pause: float) -> bool:
    """Take the session's advisory lock KEY, trying every PAUSE seconds for up to WAIT; whether
    it was taken (released when the session ends)."""
    deadline = time.monotonic() + wait
    while True:
        cur.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,))
        if cur.fetchone()[0]:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(pause)


def exists(cur, database: str) -> bool:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
    return cur.fetchone() is not None


def apart(found: list[Snapshot]) -> tuple[list[Snapshot], list[Snapshot]]:
    """A listing as (the snapshots, the other git branches' databases): a branch's database set
    aside is kept as a snapshot too (devkit/branches.py), listed by `devkit branches`."""
    return [s for s in found if not s.branch], [s for s in found if s.branch]
