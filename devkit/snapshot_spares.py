"""A ready copy ("spare") of a snapshot, so that restoring it is two renames (devkit/snapshots.py).

Restoring a snapshot needs a copy of it, since the snapshot stays: the copy was made while the
user waited (`CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY`: a checkpoint and every file of
the database). With `devkit.snapshot_spares` on (the default), that copy is made ahead, in the
background, after a snapshot is taken by hand and after any snapshot is restored (the next
restore of it is then ready): the database `<database>.spare.<name>`, owned by the kit's admin
and created closed to connections (`ALLOW_CONNECTIONS false` in the CREATE itself), so the app's
role can neither connect to it nor open it, and nobody changes it before it is swapped in.

Its cost is the disk of a second copy, which `db.snapshots`, `status` and `doctor` show.

Rules, each kept in one place here:
- The copy is made by a process of its own (`.venv/bin/python -m devkit.snapshot_spares ENV_FILE NAME`,
  started in a session of its own: the command that started it returns at once), which holds
  the advisory lock `devkit-spare:<spare>` while it copies. A restore that finds that lock
  held waits for the copy instead of making one of its own (`ready`).
- A spare is only ever valid for the snapshot of its name: PostgreSQL keeps a template from
  being dropped or renamed while it is copied, and a snapshot's drop drops its spare after it
  (`drop_spare`), so a spare whose snapshot is gone is an orphan, which the recovery of every
  snapshot command removes and names (`orphans`).
- A copy is not made when it would leave less free space where the snapshot lives than the
  copy's own size, or than 1 GiB (`room`): the disk the app writes to is never filled by a
  speed-up.
- The background process writes why it made no copy (one line) to `spare.log` in the
  snapshots' state directory (0600); no copy only means the next restore copies, as before.
"""

from __future__ import annotations

import sys
from pathlib import Path

from devkit import snapshot_catalog as catalog
from devkit.envfile import Stack
from devkit.snapshot_catalog import SPARE, spare_of

WAIT = 600.0  # seconds a restore waits for a spare being made, before it copies on its own
APPLICATION = "devkit-spare"


def _lock_key(spare: str) -> str:
    return f"devkit-spare:{spare}"


def ready(cur, stack: Stack, name: str) -> str:
    """The spare of snapshot NAME to swap in ("" when there is none): a spare being made is waited
    for (its lock), up to WAIT seconds."""
    spare = spare_of(stack, name)
    if not catalog.advisory_lock(cur, _lock_key(spare), WAIT, 0.05):
        return ""
    cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_lock_key(spare),))
    return spare if catalog.exists(cur, spare) else ""


def drop_spare(cur, stack: Stack, name: str) -> None:
    """Drop snapshot NAME's spare; after the snapshot itself (its drop waits for a spare being
    copied from it, which then exists)."""
    cur.execute(f"DROP DATABASE IF EXISTS {catalog.quote(cur, spare_of(stack, name))}")


def orphans(cur, stack: Stack, kept: set[str]) -> list[str]:
    """The names of the spares whose snapshot is not among KEPT (the marked snapshots' names)."""
    prefix = f"{stack.pg_database}{SPARE}"
    cur.execute(
        "SELECT datname FROM pg_database WHERE starts_with(datname, %s) ORDER BY 1", (prefix,)
    )
    names = [name[len(prefix) :] for (name,) in cur.fetchall()]
    return [name for name in names if catalog.NAME.fullmatch(name) and name not in kept]


def log_file(stack: Stack) -> Path:
    return catalog.redis_dir(stack) / "spare.log"


def start(stack: Stack, name: str) -> None:
    """Make snapshot NAME's spare in a process of its own, which outlives this one."""
    import os
    import subprocess

    from devkit.paths import KIT_ROOT

    directory = catalog.redis_dir(stack)
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Never through a link left in its place (a file of the user's is not truncated).
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        log = os.open(log_file(stack), flags, 0o600)
    except OSError:  # a speed-up only: the next restore copies, as without it
        return
    try:
        subprocess.Popen(
            [sys.executable, "-m", "devkit.snapshot_spares", str(stack.env_file), name],
            cwd=KIT_ROOT,  # this kit's code, whatever the working directory
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    finally:
        os.close(log)


def make(stack: Stack, name: str) -> None:
    """Copy snapshot NAME as its spare, holding the spare's lock; nothing when the spare exists,
    or the snapshot is gone (dropped since: a spare would be an orphan)."""
    spare, source = spare_of(stack, name), catalog.database_of(stack, name)
    with catalog.admin_cursor(stack, APPLICATION) as cur:
        cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (_lock_key(spare),))
        if catalog.exists(cur, spare) or name not in catalog.marked_names(cur, stack):
            return
        if problem := room(cur, stack, source):
            raise SpareSkipped(problem)
        cur.execute(
            f"CREATE DATABASE {catalog.quote(cur, spare)} TEMPLATE {catalog.quote(cur, source)} "
            "STRATEGY FILE_COPY ALLOW_CONNECTIONS false"
        )


MIN_FREE = 1 << 30  # bytes a ready copy always leaves free


class SpareSkipped(Exception):
    """No ready copy is made (why: the message)."""


def room(cur, stack: Stack, source: str) -> str:
    """Why the copy of SOURCE does not fit ("" when it does): free space in the directory of its
    tablespace, as the server's container sees it (`df`), against its size."""
    import subprocess

    from devkit.shells import container_of
    from devkit.volumes import human_size

    cur.execute(
        "SELECT pg_database_size(oid), coalesce(nullif(pg_tablespace_location(dattablespace), ''), "
        "current_setting('data_directory')) FROM pg_database WHERE datname = %s",
        (source,),
    )
    size, directory = cur.fetchone()
    shown = subprocess.run(
        ["docker", "exec", container_of(stack, "postgres"), "df", "-Pk", directory],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    try:
        free = int(shown.stdout.splitlines()[-1].split()[3]) * 1024
    except (IndexError, ValueError):
        return f"the free space in {directory} is unknown ({shown.stderr.strip()[:200]})"
    if free - size < max(size, MIN_FREE):
        return (
            f"a copy of {human_size(size)} would leave {human_size(max(free - size, 0))} free in "
            f"{directory} (at least its own size and {human_size(MIN_FREE)} stay free)"
        )
    return ""


def main(argv: list[str] | None = None) -> int:
    """The background process `start` runs: ENV_FILE (the app's .env.local) and NAME."""
    from devkit.envfile import read_env_file, stack_of

    env_file, name = argv if argv is not None else sys.argv[1:]
    try:
        make(stack_of(Path(env_file), read_env_file(Path(env_file))), name)
    except Exception as exc:  # the spare is only a speed-up: said in its log, not raised
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"the ready copy of snapshot {name} was not made: {first}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
