"""One snapshot command at a time per database, and what an interrupted one left put right
(devkit/snapshots.py): its lock, and the recovery every command that changes snapshots runs
first (`changing`); `recover` on its own for `db.snapshots` and for `up`, which finds the app's
database closed (devkit/lifecycle.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from devkit import snapshot_catalog as catalog
from devkit.envfile import Stack
from devkit.paths import remove_kit_file
from devkit.snapshot_catalog import SnapshotError, redis_dir
from devkit.snapshot_spares import drop_spare, orphans


@contextmanager
def changing(stack: Stack, say: Callable[[str], None]) -> Iterator:
    """catalog.admin_cursor's cursor for a command that changes snapshots: one such command at a time per
    database (an advisory lock, released when the session ends, also by a killed process), and
    what an interrupted one left put right first and said (_recover)."""
    with catalog.admin_cursor(stack) as cur:
        _lock(cur, stack)
        _recover(cur, stack, say)
        yield cur


def recover(stack: Stack, say: Callable[[str], None]) -> None:
    """Wait for a snapshot command running on the app's database (its lock), or put right what
    an interrupted one left (its database closed, half-made copies), saying what was done."""
    with changing(stack, say):
        pass


LOCK_WAIT = 60.0  # seconds another snapshot command of the same database is waited for


def _lock(cur, stack: Stack) -> None:
    if not catalog.advisory_lock(cur, f"devkit-snapshots:{stack.pg_database}", LOCK_WAIT, 0.1):
        raise SnapshotError(
            f"another snapshot command on {stack.pg_database} has been running for over "
            f"{LOCK_WAIT:.0f} s",
            "let it finish, then run this again",
        )


def _recover(cur, stack: Stack, say: Callable[[str], None]) -> None:
    """Put right what a snapshot command killed half-way (its process, or its server session)
    left: the app's database closed to connections, or gone (db.reset between its rename and
    its new database), a restore's copy, a copy never marked as a snapshot. A snapshot that is
    marked is never removed here; nor is any copy while the app's database is missing."""
    app = stack.pg_database
    prefix = f"{app}{catalog.MARK}"
    cur.execute(
        "SELECT datname, datallowconn, shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE datname = %s OR datname = %s OR starts_with(datname, %s)",
        (app, app + catalog.RESTORING, prefix),
    )
    found = {name: (allowed, comment) for name, allowed, comment in cur.fetchall()}
    if app not in found:
        cur.execute(
            f"CREATE DATABASE {catalog.quote(cur, app)} OWNER {catalog.quote(cur, stack.pg_user)}"
        )
        newest = next(iter(catalog.listed(cur, stack)), None)
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
        cur.execute(f"ALTER DATABASE {catalog.quote(cur, app)} WITH ALLOW_CONNECTIONS true")
        say(f"{app} was left closed to connections by an interrupted snapshot command: open again")
    if app + catalog.RESTORING in found:
        cur.execute(f"DROP DATABASE {catalog.quote(cur, app + catalog.RESTORING)}")
        say(f"removed {app + catalog.RESTORING}, the copy an interrupted restore left")
    for name, (_, comment) in found.items():
        if name.startswith(prefix) and not catalog.marked(comment):
            cur.execute(f"DROP DATABASE {catalog.quote(cur, name)}")
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
        cur.execute(f"ALTER DATABASE {catalog.quote(cur, name)} OWNER TO CURRENT_USER")
    names = catalog.marked_names(cur, stack)
    for name in orphans(cur, stack, names):
        drop_spare(cur, stack, name)
        say(f"removed the ready copy of snapshot {name}, which is gone")
    kept = {f"{name}.keys.gz" for name in names}
    directory = redis_dir(stack)
    for path in sorted(directory.glob("*.keys.gz")) + sorted(directory.glob(".*.partial")):
        if path.name not in kept and remove_kit_file(path, directory):
            say(f"removed {path.name}, a Redis copy of no snapshot (its command was interrupted)")
