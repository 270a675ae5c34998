"""A git worktree of an app (`git worktree add`) is an app of its own: its own stack (project,
ports, passwords), its database cloned from the main worktree's when setup makes the stack.

The clone goes through the kit's own backup and restore (devkit/commands/restore.py): the two
databases are in different servers, and the restore runs on the worktree app's own login, across
migration versions when the branches differ (then migrated to the worktree's head). A plain copy
of a directory stays refused (devkit/envfile.py: check_own_directory); a worktree is told apart
by git's own files (devkit/git_head.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from devkit.envfile import Stack
from devkit.git_head import Head, head_of


def main_app_of(app_dir: Path, head: Head | None = None) -> Path | None:
    """The same app in the repository's main worktree when APP_DIR is in a linked worktree and
    that app has a stack (the kit wrote its .env.local); else None."""
    from devkit.app import kit_wrote
    from devkit.paths import ENV_FILE_NAME

    head = head or head_of(app_dir)
    if head is None or not head.linked_worktree:
        return None
    main = head.common_dir.parent / app_dir.relative_to(head.top)
    return main if kit_wrote(main / ENV_FILE_NAME) else None


def copied_from_main(app_dir: Path, values: Mapping[str, str]) -> Path | None:
    """The main worktree's app when APP_DIR, in a linked worktree, holds a copy of its
    .env.local (VALUES: written for it, naming its stack): setup then gives the worktree a stack
    of its own instead of refusing the copy."""
    main = main_app_of(app_dir)
    recorded = values.get("DEVKIT_APP_DIR", "")
    return main if main is not None and recorded and Path(recorded) == main else None


def clone_main(config: Mapping[str, Any], stack: Stack, say: Callable[[str], None] = print) -> bool:
    """Load the main worktree's database into STACK's (new, in a linked worktree): True when it
    was. The main worktree's stack down, or a version its migrations cannot cross, is said with
    the way to do it later; the new database then stays as the migrations make it."""
    import tempfile

    from devkit.backup.dump import create_backup
    from devkit.backup.target import stack_target
    from devkit.commands import restore
    from devkit.envfile import read_env_file, stack_of
    from devkit.errors import DevkitError
    from devkit.paths import ENV_FILE_NAME

    main = main_app_of(stack.app_dir)
    if main is None:
        return False
    own = {**config, "app_dir": str(stack.app_dir)}
    try:
        source = stack_of(main / ENV_FILE_NAME, read_env_file(main / ENV_FILE_NAME))
        with tempfile.TemporaryDirectory(prefix="devkit-worktree-") as directory:
            made = create_backup(stack_target(source.values), Path(directory))
            plan = restore.prepare(own, made.path, restore.RestoreOptions(to_head=True))
            done = restore.run(own, plan, say=lambda line: None)
    except DevkitError as exc:
        say(f"warning: the database of {main} was not cloned: {exc.cause}")
        say(
            f"fix: {exc.hint}; then clone it by hand: (cd {main} && devkit db.backup) and "
            "devkit db.restore FILE here"
        )
        return False
    say(f"cloned the database of the main worktree's app ({main}): {done.rows} rows")
    return True
