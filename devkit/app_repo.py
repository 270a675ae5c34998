"""The app's git repository and the kit's files in it: `.env.local` (passwords) and `backups/`
(the app's data) never reach a commit.

The kit writes no tracked file of the app's: `.env.local` goes into the repository's own
`.git/info/exclude` (local to this clone, shared by its worktrees, never committed), and the
backup directory carries a `.gitignore` of its own that ignores everything in it (itself
included), so it is ignored wherever it is. A file git already tracks is not hidden by either:
setup warns, doctor fails, both with the command that stops tracking it.
"""

from __future__ import annotations

from pathlib import Path

from devkit.git_head import git
from devkit.paths import ENV_FILE_NAME

EXCLUDE_HEADER = "# devkit: the app's .env.local holds its passwords (devkit/app_repo.py)"


def exclude_file(app_dir: Path) -> Path | None:
    """The repository's info/exclude (the main one's for a worktree), None outside git."""
    done = git(app_dir, "rev-parse", "--path-format=absolute", "--git-common-dir")
    if done is None or done.returncode != 0:
        return None
    return Path(done.stdout.strip()) / "info" / "exclude"


def ignore_env_file(app_dir: Path) -> Path | None:
    """Add `/.env.local` (as seen from the repository's top) to info/exclude when git does not
    ignore the file yet; the exclude file when it was changed."""
    ignored = git(app_dir, "check-ignore", "-q", "--no-index", ENV_FILE_NAME)
    exclude = exclude_file(app_dir)
    if exclude is None or ignored is None or ignored.returncode == 0:
        return None
    top = git(app_dir, "rev-parse", "--show-prefix")
    prefix = top.stdout.strip() if top and top.returncode == 0 else ""
    exclude.parent.mkdir(parents=True, exist_ok=True)
    existing = exclude.read_text() if exclude.exists() else ""
    with exclude.open("a") as f:
        if existing and not existing.endswith("\n"):
            f.write("\n")
        f.write(f"{EXCLUDE_HEADER}\n/{prefix}{ENV_FILE_NAME}\n")
    return exclude


def ignore_directory(directory: Path) -> None:
    """A `.gitignore` in DIRECTORY (the kit's backup directory) that ignores all of it."""
    import os

    marker = directory / ".gitignore"
    try:  # 0600 as every file in a backup directory (nothing there is for others to read)
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write("# devkit: backups hold the app's data; never commit them\n*\n")


def tracked(app_dir: Path, *names: str) -> list[str]:
    """Which of NAMES (relative to the app) git tracks in the app's repository."""
    done = git(app_dir, "ls-files", "--", *names)
    if done is None or done.returncode != 0:
        return []
    return [line for line in done.stdout.splitlines() if line]


def tracked_env_file(app_dir: Path) -> tuple[str, str] | None:
    """(cause, fix) when the app's git repository tracks its .env.local (its passwords)."""
    found = tracked(app_dir, ENV_FILE_NAME)
    if not found:
        return None
    return (
        f"git tracks {app_dir / ENV_FILE_NAME}: its passwords go into every commit",
        f"stop tracking it (the file stays where it is): git -C {app_dir} rm --cached "
        f"{' '.join(found)}, then commit; setup keeps git from adding it again",
    )
