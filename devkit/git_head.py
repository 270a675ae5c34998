"""What the app's git checkout is on, read from its files: fast enough for every database task.

`head_of(app_dir)` reads `.git/HEAD` (a worktree's `.git` file names its own git directory) and
says the branch checked out, or the commit of a detached HEAD, and whether a rebase or another
multi-step command is under way. No `git` process runs for it (git's own layout:
gitrepository-layout(5)); listing branches does run git (`branches`).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

# A command that checks out commits one after another and comes back (its steps are not switches).
_UNDER_WAY = {
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase",
    "BISECT_LOG": "a bisect",
}


@dataclass(frozen=True)
class Head:
    top: Path  # the worktree's top directory
    git_dir: Path  # its own git directory (.git, or .git/worktrees/NAME for a linked worktree)
    common_dir: Path  # the repository's (shared by its worktrees)
    branch: str  # "" when HEAD is detached
    commit: str  # the commit of a detached HEAD ("" on a branch)
    under_way: str  # "a rebase", "a bisect"; "" when none

    @property
    def linked_worktree(self) -> bool:
        """A worktree made by `git worktree add` (not the repository's main one)."""
        return self.git_dir != self.common_dir

    def describe(self) -> str:
        return f"branch {self.branch}" if self.branch else f"detached HEAD at {self.commit[:12]}"


def _git_dir(top: Path) -> Path | None:
    dot_git = top / ".git"
    if dot_git.is_dir():
        return dot_git
    try:
        text = dot_git.read_text(errors="replace")
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    named = Path(text[len("gitdir: ") :].strip())
    return named if named.is_absolute() else (top / named).resolve()


def head_of(app_dir: Path) -> Head | None:
    """The checkout APP_DIR is in (the nearest directory up with a `.git`), None outside git."""
    for top in (app_dir, *app_dir.parents):
        git_dir = _git_dir(top)
        if git_dir is None:
            continue
        try:
            head = (git_dir / "HEAD").read_text(errors="replace").strip()
        except OSError:
            return None
        try:
            common = (git_dir / "commondir").read_text().strip()
            common_dir = (git_dir / common).resolve()
        except OSError:
            common_dir = git_dir
        under_way = next(
            (what for name, what in _UNDER_WAY.items() if (git_dir / name).exists()), ""
        )
        if head.startswith("ref: refs/heads/"):
            return Head(top, git_dir, common_dir, head[len("ref: refs/heads/") :], "", under_way)
        return Head(top, git_dir, common_dir, "", head, under_way)
    return None


def git(top: Path, *args: str) -> subprocess.CompletedProcess[str] | None:
    """`git -C TOP ARGS`, its output captured; None when git cannot run (not installed, a hung
    filesystem)."""
    try:
        return subprocess.run(
            ["git", "-C", str(top), *args],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None


def local_branches(top: Path) -> set[str] | None:
    """The repository's local branches (git for-each-ref), None when git cannot say."""
    done = git(top, "for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads")
    if done is None or done.returncode != 0:
        return None
    return {line for line in done.stdout.splitlines() if line}
