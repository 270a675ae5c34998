"""What a task that changes the app's database keeps first, so that the change can be undone
(db.migrate, db.downgrade, db.restore; db.reset sets the database itself aside, devkit/commands/reset.py).

On this machine's stack it is an automatic snapshot (devkit/snapshots.py): taken in about a
second whatever the data's size, put back with `db.snapshot.restore` as fast. The newest
`devkit.snapshot_keep` automatic snapshots are kept, the older ones dropped as a new one is taken,
each named in the output. A backup file (devkit/backup/dump.py) is kept instead where a snapshot
cannot be: a database elsewhere (DATABASE_URL), `--backup` asked for, `snapshot_keep: 0`, or a
snapshot that failed (its cause is said).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.backup.target import Target
from devkit.errors import DevkitError


@dataclass(frozen=True)
class SafetyNet:
    snapshot: str = ""  # the automatic snapshot's name
    backup: Path | None = None  # the backup file
    stack: Any = None  # the snapshot's stack, and how many automatic ones it keeps
    keep: int = 0

    def prune_older(self, say: Callable[[str], None] = print) -> None:
        """Drop the automatic snapshots beyond `snapshot_keep`, now that the change this one was
        kept for has succeeded: a command that fails never deletes an undo point (its own new
        snapshot is removed instead, by kept_around). A prune that fails is said and leaves
        them all: the change stands, and so does its own undo point."""
        if not self.snapshot:
            return
        from devkit import snapshots

        try:
            snapshots.prune_automatic(self.stack, self.keep, say)
        except Exception as exc:  # dropping older undo points is housekeeping
            cause = exc.cause if isinstance(exc, DevkitError) else str(exc).strip().split("\n")[0]
            say(
                f"warning: the automatic snapshots older than the newest {self.keep} were not "
                f"dropped ({cause}); the next change drops them (devkit db.snapshots lists them)"
            )

    def undo(self) -> str:
        """The command that puts the data back as it was."""
        if self.snapshot:
            return f"devkit db.snapshot.restore {self.snapshot} --yes"
        return f"devkit db.restore {self.backup} --yes" if self.backup else ""

    def __str__(self) -> str:
        return f"snapshot {self.snapshot}" if self.snapshot else f"backup {self.backup}"


def own_stack(config: Mapping[str, Any], target: Target):
    """The stack when TARGET is its own database on this machine, else None."""
    from devkit.backup.target import check_local
    from devkit.envfile import load_stack

    try:
        stack = load_stack(config)
        check_local(stack, target, "a snapshot")
    except DevkitError:
        return None
    return stack


def keep_first(
    config: Mapping[str, Any],
    target: Target,
    task: str,
    backup_file: bool = False,
    say: Callable[[str], None] = print,
    to_file: Callable[[Path], Path] | None = None,
) -> SafetyNet:
    """Keep the database as it is before TASK changes it: a snapshot (the older automatic ones
    are pruned by SafetyNet.prune_older once the change succeeded), or a backup file written
    by `to_file(directory)` (default: the kit's JSON backup; see the module). Raises when
    neither can be kept: the change must not go ahead without it."""
    from devkit.settings import setting

    keep = setting(config, "snapshot_keep")
    stack = None if backup_file or keep == 0 else own_stack(config, target)
    if stack is not None:
        from devkit import snapshots

        try:
            made = snapshots.take(stack, snapshots.automatic_name(task), say, auto=task)
        except DevkitError as exc:
            say(f"no snapshot ({exc.cause}): a backup file instead")
        else:
            return SafetyNet(snapshot=made.name, stack=stack, keep=keep)
    from devkit.backup.files import backup_dir

    if to_file is None:
        from devkit.backup.dump import create_backup

        return SafetyNet(backup=create_backup(target, backup_dir(config)).path)
    return SafetyNet(backup=to_file(backup_dir(config)))


@contextlib.contextmanager
def kept_around(
    config: Mapping[str, Any],
    target: Target,
    task: str,
    skip: bool = False,
    say: Callable[[str], None] = print,
    to_file: Callable[[Path], Path] | None = None,
) -> Iterator[SafetyNet | None]:
    """keep_first, for a change made in the block (None with `skip`). A change that fails
    changed nothing: what was kept is removed again, as it equals the database, and no older
    undo point is dropped; the older automatic snapshots are pruned only once it succeeded."""
    if skip:
        yield None
        return
    net = keep_first(config, target, task, say=say, to_file=to_file)
    try:
        yield net
        net.prune_older(say)
    except BaseException:
        if net.snapshot:
            from devkit import snapshots
            from devkit.envfile import load_stack

            snapshots.drop(load_stack(config), net.snapshot)
        elif net.backup:
            net.backup.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def set_aside_around(
    stack, task: str, keep: int, say: Callable[[str], None] = print
) -> Iterator[SafetyNet]:
    """The stack's database set aside as an automatic snapshot (renamed, nothing copied) and an
    empty one in its place for the block to fill (db.restore --clean of a plain dump: its
    objects made anew, as pg_restore --clean). A block that fails puts the database back as it
    was; one that succeeds prunes the automatic snapshots beyond KEEP. Redis is left as it is."""
    from devkit import snapshots

    aside = snapshots.set_aside(stack, task, say, empty_redis=False)
    net = SafetyNet(snapshot=aside.name, stack=stack, keep=keep)
    try:
        yield net
    except BaseException:
        snapshots.put_back(stack, aside.name, say)
        snapshots.drop(stack, aside.name, say)
        say(f"put back the database as it was (the snapshot {aside.name} was swapped in again)")
        raise
    net.prune_older(say)
