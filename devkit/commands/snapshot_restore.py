"""db.snapshot.restore's use case: a snapshot swapped in (devkit/snapshots.py), what it replaced
kept as the undo snapshot, then the automatic snapshots beyond `snapshot_keep` dropped (each
said): only once the restore succeeded, so a failed one never costs an undo point."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from devkit.envfile import Stack
from devkit.snapshot_catalog import Snapshot


@dataclass
class SnapshotRestored:
    name: str  # the snapshot put back
    undo: Snapshot  # what it replaced, kept as a snapshot
    dropped: list[Snapshot] = field(default_factory=list)  # older automatic ones pruned


def run(
    stack: Stack, name: str, keep: int, spare: bool, say: Callable[[str], None] = print
) -> SnapshotRestored:
    """`spare`: the snapshot's next ready copy is made in the background, once the rest is done
    (devkit/snapshot_spares.py)."""
    from devkit import snapshot_spares
    from devkit.snapshots import restore

    done = SnapshotRestored(name, *restore(stack, name, say, keep))
    if spare:
        snapshot_spares.start(stack, name)
    return done
