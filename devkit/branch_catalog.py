"""The databases of the app's git branches (devkit/branches.py) as `devkit branches` lists them
(and the state saying which branch's is in place), and the ones to drop: those whose git branch is gone (`branches.prune`, which asks first), and
the least recently used beyond devkit.branch_keep or devkit.branch_max_mb (dropped after a
switch, each named; never the one in place nor the base branch's)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devkit.envfile import Stack
from devkit.paths import read_record, state_dir


def state_path(stack: Stack) -> Path:
    return state_dir() / "branches" / f"{stack.project}.json"


def read_state(stack: Stack) -> dict:
    return read_record(state_path(stack))


@dataclass(frozen=True)
class BranchDatabase:
    branch: str
    size: int  # bytes
    revision: str  # Alembic's, "" for none
    used: str  # when the branch's database was last in place (ISO 8601); "" for the one in place
    in_place: bool  # the database the app uses now
    in_git: bool | None  # the git branch still exists (None: git cannot say)
    snapshot: str  # the kept database's snapshot name ("" for the one in place)


def _kept(cur, stack: Stack, in_git: set[str] | None) -> list[BranchDatabase]:
    """The other branches' databases, last used first (IN_GIT: the git branches, None when not
    asked)."""
    from devkit import snapshot_catalog as catalog

    kept = sorted(
        (s for s in catalog.listed(cur, stack) if s.branch), key=lambda s: s.used, reverse=True
    )
    return [
        BranchDatabase(
            s.branch,
            s.size,
            s.revision,
            s.used,
            False,
            None if in_git is None else s.branch in in_git,
            s.name,
        )
        for s in kept
    ]


def list_branches(stack: Stack) -> list[BranchDatabase]:
    """The database in place (when a branch is recorded), then the kept ones, last used first."""
    from devkit import snapshot_catalog as catalog
    from devkit.git_head import head_of, local_branches
    from devkit.snapshots import app_revision

    head = head_of(stack.app_dir)
    in_git = local_branches(head.top) if head else None
    with catalog.admin_cursor(stack) as cur:
        kept = _kept(cur, stack, in_git)
        cur.execute("SELECT pg_database_size(%s)", (stack.pg_database,))
        size = cur.fetchone()[0]
    current = str(read_state(stack).get("current") or "")
    if not current:
        return kept
    exists = None if in_git is None else current in in_git
    return [BranchDatabase(current, size, app_revision(stack), "", True, exists, ""), *kept]


def gone(stack: Stack) -> list[BranchDatabase]:
    """The kept databases whose git branch no longer exists (deleted, merged and removed)."""
    return [b for b in list_branches(stack) if not b.in_place and b.in_git is False]


def base_branches(base: str) -> set[str]:
    """The branches whose databases the budget never drops: devkit.branch_base, else main and
    master."""
    return {base} if base else {"main", "master"}


def over_budget(stack: Stack, keep: int, base: str, max_mb: int = 0) -> list[BranchDatabase]:
    """The kept databases beyond the KEEP last used (0: no limit), then, while all kept ones
    together take more than MAX_MB (0: no limit), the least recently used of the rest; the
    base's is never among them. Run after every switch: only the admin's catalog is read (no
    git process, no login on the app's database)."""
    from devkit import snapshot_catalog as catalog

    with catalog.admin_cursor(stack) as cur:
        kept = _kept(cur, stack, None)  # last used first
    protected = base_branches(base)
    candidates = [b for b in kept if b.branch not in protected]
    doomed = candidates[keep:] if keep > 0 else []
    if max_mb > 0:
        left = sum(b.size for b in kept) - sum(b.size for b in doomed)
        for database in reversed(candidates):
            if left <= max_mb * 2**20:
                break
            if database not in doomed:
                doomed.append(database)
                left -= database.size
    return doomed


def drop(stack: Stack, doomed: list[BranchDatabase], say: Callable[[str], None]) -> None:
    """Drop the kept databases DOOMED (with their Redis keys), each named as it goes."""
    from devkit import snapshots

    for database in doomed:
        snapshots.drop(stack, database.snapshot, say)
        say(f"dropped the database of branch {database.branch} (last used {database.used[:19]})")
