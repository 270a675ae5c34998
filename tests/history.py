"""Earlier versions of the kit for upgrade tests: this repository's own history, checked out."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from devkit.paths import KIT_ROOT


@contextlib.contextmanager
def kit_at(commit: str, where: Path) -> Iterator[Path]:
    """The kit as it was at COMMIT (its own code, a git worktree at WHERE) while the block runs;
    the worktree is removed after."""
    subprocess.run(
        ["git", "-C", str(KIT_ROOT), "worktree", "add", "--detach", str(where), commit],
        capture_output=True,
        check=True,
    )
    try:
        yield where
    finally:
        subprocess.run(
            ["git", "-C", str(KIT_ROOT), "worktree", "remove", "--force", str(where)],
            capture_output=True,
            check=False,
        )
