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


def run(stack: Stack, name: str, keep: int, say: Callable[[str], None] = print) -> SnapshotRestored:
    from devkit.snapshots import prune_automatic, restore

    undo = restore(stack, name, say)
    return SnapshotRestored(name, undo, prune_automatic(stack, keep, say))
