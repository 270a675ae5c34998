"""db.snapshot, db.snapshots, db.snapshot.restore, db.snapshot.drop: copies of the app's database
inside its own server (devkit/snapshots.py), for an undo in about a second."""

from __future__ import annotations

from invoke import Collection, task

from devkit.tasks._cli import confirm, follows_branch, local_stack, of_app, reports_errors

# db.snapshot.restore's and db.snapshot.drop's arguments.
_NAMED_HELP = {
    "name": "The snapshot's name (`devkit db.snapshots` lists them)",
    "yes": "Do not ask (required without a terminal)",
}


def _size(size: int) -> str:
    from devkit.volumes import human_size

    return human_size(size)


@task(
    default=True,
    help={"name": "The snapshot's name (default: the time, YYYYMMDD-HHMMSS)"},
)
@reports_errors
@follows_branch
def take(c, name=None):
    """Copy the app's database (and Redis's data) inside its server: undo with db.snapshot.restore."""
    from devkit import snapshot_spares
    from devkit.settings import setting
    from devkit.snapshots import take as take_snapshot

    stack = local_stack(c, "db.snapshot")
    made = take_snapshot(stack, name)
    if setting(c.config.devkit, "snapshot_spares"):  # its restore then only renames
        snapshot_spares.start(stack, made.name)
    print(
        f"snapshot {made.name}: {_size(made.size)}, migration {made.revision or '(none)'}"
        + ("" if made.redis else " (Redis was not running: its data is not in it)")
    )
    print(f"  to go back to it: devkit db.snapshot.restore {made.name}")


@task(help=_NAMED_HELP)
@reports_errors
@follows_branch
def restore(c, name, yes=False):
    """Put a snapshot back (the database and Redis's data); what it replaces is kept as a snapshot."""
    from devkit.commands import snapshot_restore
    from devkit.settings import setting

    stack = local_stack(c, "db.snapshot.restore")
    keep = setting(c.config.devkit, "snapshot_keep")
    spare = setting(c.config.devkit, "snapshot_spares")
    confirm(
        yes,
        "the restore replaces the app's database",
        f"Replace {of_app(stack)} (and Redis's data) with snapshot {name}? Open sessions on it "
        "are ended; what it holds now is kept as a snapshot",
    )
    done = snapshot_restore.run(stack, name, keep, spare)
    print(f"restored snapshot {name}")
    print(f"  what was there is kept as snapshot {done.undo.name} ({_size(done.undo.size)})")
    print(f"  to undo: devkit db.snapshot.restore {done.undo.name} --yes")


@task(help=_NAMED_HELP)
@reports_errors
def drop(c, name, yes=False):
    """Delete a snapshot (its copy of the database and of Redis's data)."""
    from devkit.snapshots import drop as drop_snapshot

    stack = local_stack(c, "db.snapshot.drop")
    confirm(yes, "drop deletes the snapshot", f"Delete snapshot {name} of {of_app(stack)}?")
    dropped = drop_snapshot(stack, name)
    print(f"dropped snapshot {dropped.name} ({_size(dropped.size)})")


@task
@reports_errors
@follows_branch
def snapshots(c):
    """List the app's snapshots, newest first.

    Name, time, migration version, size, Redis's copy, the size of its ready copy (a restore
    then only renames: devkit.snapshot_spares), and the task that took it (automatic ones: the
    newest devkit.snapshot_keep are kept)."""
    from devkit.snapshot_catalog import apart
    from devkit.snapshot_recovery import recover
    from devkit.snapshots import list_snapshots

    stack = local_stack(c, "db.snapshots")
    recover(stack, say=print)
    found, _ = apart(list_snapshots(stack))  # the other branches': `devkit branches`
    if not found:
        print("no snapshots (devkit db.snapshot takes one)")
        return
    for snapshot in found:
        redis = "redis" if snapshot.redis else "-"
        line = (
            f"{snapshot.name:<31} {snapshot.taken:<29} {snapshot.revision or '(none)':<14} "
            f"{_size(snapshot.size):>9}  {redis}"
        )
        if snapshot.spare:
            line += f"  ready copy {_size(snapshot.spare)}"
        print(line + (f"  automatic ({snapshot.auto})" if snapshot.auto else ""))


ns = Collection("snapshot", take, restore, drop)
TASKS = (snapshots,)
