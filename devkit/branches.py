"""The app's database follows the git branch: each branch has a database of its own, swapped in
by rename when the branch is checked out (`devkit branches`).

The database the app uses keeps its name, port and `.env.local`; what changes is which one
carries that name. The kit remembers which branch the database in place belongs to (its state
directory, `branches/<project>.json`); the other branches' databases are kept as snapshots of a
kind of their own (devkit/snapshots.py: `<database>.snapshot.branch-…`, closed to connections,
owned by the kit's admin, their branch name and last use in the comment the admin writes), with
Redis's keys beside them.

When HEAD names another branch than the one recorded (the post-checkout hook, `up`, F5's start
task and every database task look: devkit/git_head.py reads two small files):
- a branch whose database is kept: in one transaction the database in place is renamed into a
  kept one (its branch's) and the branch's kept one is renamed into place; Redis's keys are
  saved, then the branch's put back. Nothing is copied: the app is cut off for two renames.
- a branch seen for the first time: the database in place is copied at file level for the
  branch it belonged to (`CREATE DATABASE … STRATEGY FILE_COPY`), the one in place becomes the
  new branch's, and is migrated to that branch's head (the copy, the base, never is). Redis's
  keys stay as they are.

A switch writes what it is doing first (`switching`), so that one killed at any point is put
right by the next command: the transaction either happened (a kept database of the branch left
exists) or not. Switches and snapshot commands take the same lock (devkit/snapshot_recovery.py).
A detached HEAD or a rebase under way keeps the database in place, saying so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from devkit.branch_catalog import read_state, state_path
from devkit.envfile import Stack
from devkit.errors import DataConflict
from devkit.git_head import Head, head_of
from devkit.paths import write_record
from devkit.snapshot_catalog import AdminUnreachable
from devkit.snapshots import stamp

BRANCH = "branch"  # the `auto` of a kept branch database (never pruned as an automatic snapshot)


def kept_name(branch: str) -> str:
    """The snapshot name of BRANCH's kept database: readable where the branch name allows it,
    unique by a hash of the whole name (`/`, spaces, `機能/検索` all make valid names)."""
    slug = re.sub(r"[^a-z0-9]+", "-", branch.lower()).strip("-")[:22].strip("-")
    digest = hashlib.sha256(branch.encode()).hexdigest()[:8]
    return f"branch-{slug}-{digest}" if slug else f"branch-{digest}"


def _write_state(stack: Stack, state: dict) -> None:
    write_record(state_path(stack), state)


@dataclass(frozen=True)
class Followed:
    """What `follow` did: the branch in place now, the one before, and whether it switched."""

    branch: str
    before: str = ""
    switched: bool = False
    created: bool = False


def follow(
    stack: Stack, say: Callable[[str], None] = print, head: Head | None = None, base: str = ""
):
    """Put the database of HEAD's branch in place when another branch's is (see the module); a
    Followed, or None when the app is not in git. Says one line when anything happened."""
    head = head or head_of(stack.app_dir)
    if head is None:
        return None
    state = read_state(stack)
    current = str(state.get("current") or "")
    if not state.get("switching") and current == head.branch:
        return Followed(current)  # the everyday case: two small files read, nothing else
    if head.under_way or not head.branch:
        if current:
            reason = f"{head.under_way} is under way" if head.under_way else head.describe()
            say(f"{reason}: the database stays that of branch {current}")
        return Followed(current)
    if not current and not state.get("switching"):
        _write_state(stack, {"current": head.branch})
        say(f"the database follows the git branch: it is branch {head.branch}'s")
        return Followed(head.branch)
    return switch(stack, head.branch, say, base)


def switch(
    stack: Stack, branch: str, say: Callable[[str], None] = print, base: str = ""
) -> Followed:
    """Put BRANCH's database in place: its kept one; else, for a branch seen for the first time,
    a copy of BASE's (devkit.branch_base; empty: the branch in place), migrated."""
    from devkit import snapshot_catalog as catalog
    from devkit import snapshot_redis, snapshots
    from devkit.alembic_api import import_ahead
    from devkit.snapshot_recovery import changing

    with changing(stack, say) as cur:
        state = _recover(cur, stack, read_state(stack), say)  # waited for the lock: read again
        current = str(state.get("current") or "")
        if current == branch:
            return Followed(branch)
        q = lambda name: catalog.quote(cur, name)  # noqa: E731
        app, leaving = stack.pg_database, catalog.database_of(stack, kept_name(current))
        if catalog.exists(cur, leaving):
            raise DataConflict(
                f"branch {current} has a kept database already, and its database is in place",
                "see them: devkit branches; drop the kept one you do not need: "
                f"devkit db.snapshot.drop {kept_name(current)} --yes",
            )
        coming = catalog.database_of(stack, kept_name(branch))
        source = ""  # what a new branch's database is copied from ("": the one in place)
        if not catalog.exists(cur, coming):
            coming = ""
            import_ahead(stack.app_dir)  # to migrate after the copy: imported while it runs
            from_base, origin = _base_database(cur, stack, base, current)
            if from_base:
                source = snapshots.copy_for_app(cur, stack, from_base, f"copying {origin}")
        switching = {**state, "switching": {"from": current, "to": branch}}
        _write_state(stack, switching)
        incoming = coming or source
        # Redis's keys are saved while PostgreSQL closes the database and copies it (two
        # servers: neither waits for the other); the kept database's comment records them.
        revision = snapshots.app_revision(stack)  # on the app's login: before it is closed
        with ThreadPoolExecutor(1, "redis-keys") as pool:
            keys = pool.submit(snapshot_redis.save_redis, stack, kept_name(current))
            meta = lambda: {  # noqa: E731
                **snapshots.snapshot_meta(kept_name(current), revision, keys.result(), BRANCH),
                "branch": current,
                "used": stamp(),  # when it was last in place
            }
            try:
                with snapshots.closed(cur, stack, app, say):
                    if incoming:  # renamed: the one in place is kept, the incoming takes its name
                        snapshots.swap(
                            cur,
                            [
                                f"COMMENT ON DATABASE {q(app)} IS %s",
                                f"ALTER DATABASE {q(app)} WITH ALLOW_CONNECTIONS false",
                                f"ALTER DATABASE {q(app)} RENAME TO {q(leaving)}",
                                f"ALTER DATABASE {q(leaving)} OWNER TO CURRENT_USER",
                                f"ALTER DATABASE {q(incoming)} RENAME TO {q(app)}",
                                f"ALTER DATABASE {q(app)} OWNER TO {q(stack.pg_user)}",
                                f"COMMENT ON DATABASE {q(app)} IS NULL",
                            ],
                            [(snapshots.comment_text(meta()),), (), (), (), (), (), ()],
                        )
                    else:  # copied: the copy is kept, the one in place goes on as the new one
                        cur.execute(
                            f"CREATE DATABASE {q(leaving)} TEMPLATE {q(app)} STRATEGY FILE_COPY"
                        )
                        snapshots.mark(cur, leaving, meta())
            except Exception as exc:
                keys.exception()  # the keys' copy is written (or failed) before it goes
                snapshots.cleanup(
                    stack,
                    *(f"DROP DATABASE IF EXISTS {q(name)}" for name in (leaving, source) if name),
                )
                snapshot_redis.forget_redis(stack, kept_name(current))
                _write_state(stack, state)
                raise snapshots.failed(f"switching to branch {branch}'s database", exc) from None
        _finish(stack, switching, say)
    if coming:
        say(f"branch {branch}: its database is in place (branch {current}'s is kept)")
        check_known(stack, branch, say)
    else:
        say(
            f"branch {branch}: a new database, copied from {origin if source else f'branch {current}'}'s"
        )
        _migrate_new(stack, branch, say)
    return Followed(branch, current, switched=True, created=not coming)


def _base_database(cur, stack: Stack, base: str, current: str) -> tuple[str, str]:
    """What a new branch's database is copied from when devkit.branch_base names it: that
    branch's kept database, else the snapshot of that name (db.pull's `pulled-ENV`, say); the
    database and how to name it, ("", "") for the database in place."""
    from devkit import snapshot_catalog as catalog

    if not base:
        return "", ""
    kept = catalog.database_of(stack, kept_name(base))
    if base != current and catalog.exists(cur, kept):
        return kept, f"branch {base}"
    if catalog.NAME.fullmatch(base):
        snapshot = catalog.database_of(stack, base)
        if catalog.exists(cur, snapshot):
            return snapshot, f"snapshot {base}"
    return "", ""


def _finish(stack: Stack, state: dict, say: Callable[[str], None]) -> dict:
    """After the swap: Redis gets the keys kept with the branch's database (when it was kept),
    the state records the branch, then the copy of the keys is removed (in that order: killed
    between two steps, doing them again gives the same result)."""
    from devkit import redis_keys, snapshot_redis
    from devkit import snapshot_catalog as catalog

    branch = state["switching"]["to"]
    keys = catalog.redis_copy(stack, kept_name(branch))
    if keys.is_file():
        try:
            redis_keys.load(stack, keys)
        except redis_keys.RedisKeysError as exc:
            say(f"warning: Redis's keys of branch {branch} were not put back: {exc.cause}")
    done = {k: v for k, v in state.items() if k != "switching"}
    done["current"] = branch
    _write_state(stack, done)
    snapshot_redis.forget_redis(stack, kept_name(branch))
    return done


def _recover(cur, stack: Stack, state: dict, say: Callable[[str], None]) -> dict:
    """Put right a switch that was killed: finished when its transaction happened (the branch
    left has a kept database), else forgotten (the database in place is still the one left)."""
    from devkit import snapshot_catalog as catalog

    switching = state.get("switching")
    if not isinstance(switching, dict):
        return state
    left, to = str(switching.get("from") or ""), str(switching.get("to") or "")
    found = {s.name: s for s in catalog.listed(cur, stack)}
    if (kept := found.get(kept_name(left))) and kept.branch == left:
        say(f"finished the switch to branch {to}'s database that was interrupted")
        return _finish(stack, state, say)
    say(f"the switch to branch {to} was interrupted before it changed anything: branch {left}'s")
    back = {k: v for k, v in state.items() if k != "switching"}
    _write_state(stack, back)
    return back


def _migrate_new(stack: Stack, branch: str, say: Callable[[str], None]) -> None:
    """A new branch's database to the branch's head (its base, kept, is never migrated)."""
    from devkit.alembic_api import has_migrations, migrate_app
    from devkit.errors import DevkitError

    if not has_migrations(stack.app_dir):
        return
    try:
        run = migrate_app({"app_dir": str(stack.app_dir)}, "head", "up", False, stack)
    except DevkitError as exc:
        say(f"warning: branch {branch}'s database was not migrated: {exc.cause}")
        say(f"fix: {exc.hint}")
        return
    if run.before != run.after:
        before = ", ".join(run.before) or "(none)"
        say(f"migrated branch {branch}'s database: {before} → {', '.join(run.after)}")


def _mentioned(app_dir: Path, revisions: list[str]) -> bool:
    """Every one of REVISIONS defined by a migration file of the app (`revision = "…"` in the
    files under alembic.ini's script_location and version_locations, read as text): the everyday
    check, without importing Alembic (0.4 s) or the migrations. False when in doubt (the files
    not found): Alembic then decides."""
    import configparser

    app_dir = app_dir.resolve()
    parser = configparser.ConfigParser(defaults={"here": str(app_dir)})
    try:
        parser.read(app_dir / "alembic.ini")
        places = [parser.get("alembic", "script_location", fallback="")]
        places += re.split(r"[\s,:;]+", parser.get("alembic", "version_locations", fallback=""))
    except configparser.Error:
        return False
    texts = []
    for place in filter(None, places):
        root = Path(place) if Path(place).is_absolute() else app_dir / place
        texts += [path.read_text(errors="replace") for path in root.rglob("*.py")]
    defined = re.compile(r"""^revision\b[^=\n]*=\s*["']([0-9A-Za-z_]+)["']""", re.M)
    found = {match for text in texts for match in defined.findall(text)}
    return bool(found) and set(revisions) <= found


def check_known(stack: Stack, branch: str, say: Callable[[str], None]) -> None:
    """Say, with the fix, when the database in place is at a revision BRANCH's migrations do
    not have (a migration renamed by a rebase, a commit that dropped one)."""
    from devkit.alembic_api import has_migrations
    from devkit.snapshots import app_revision

    if not has_migrations(stack.app_dir):
        return
    revisions = [r.strip() for r in app_revision(stack).split(",") if r.strip()]
    if not revisions or _mentioned(stack.app_dir, revisions):
        return
    from alembic.script import ScriptDirectory

    from devkit.alembic_api import alembic_config
    from devkit.backup.target import stack_target

    script = ScriptDirectory.from_config(alembic_config(stack.app_dir, stack_target(stack.values)))
    for revision in revisions:
        try:
            script.get_revision(revision)
        except Exception:  # alembic's CommandError, ResolutionError …: not among them
            say(
                f"warning: branch {branch}'s database is at migration {revision}, which its "
                "migrations do not have"
            )
            say(
                "fix: check out the commit that has it, or start this branch's database again "
                "from another's: devkit db.reset"
            )


def _off(value: object) -> bool:
    """devkit.branch_databases as Invoke gives it: a bool from a file, a string from the
    environment (INVOKE_DEVKIT_BRANCH_DATABASES=false)."""
    return str(value).strip().lower() in ("false", "0", "no", "off", "")


def follow_app(
    config, say: Callable[[str], None] = print, hook: bool = False, strict: bool = False
):
    """follow() for the app per the kit's config (the post-checkout hook, `up`, the database
    tasks): nothing when the app is not in git (or is the kit's sample app) or
    devkit.branch_databases is off (what was
    recorded is then forgotten: the database in place is nobody's). The stack down (or its
    admin unknown) is said, not raised: the task that follows fails on its own if it needs the
    database, and one on another database (DATABASE_URL) goes on. In the hook, the steps of a
    rebase or a bisect say nothing. An app without a stack is no error unless `strict`
    (`branches.follow`)."""
    from devkit.envfile import load_stack
    from devkit.errors import DevkitError
    from devkit.paths import KIT_ROOT

    try:
        stack = load_stack(config)
    except DevkitError:
        if strict:
            raise
        return None  # no stack (yet): the task says what it needs (DATABASE_URL may name another)
    if stack.app_dir == KIT_ROOT or KIT_ROOT in stack.app_dir.parents:
        return None  # the kit's sample app: the kit's own branches are not the app's
    if _off(config.get("branch_databases", True)):
        with contextlib.suppress(FileNotFoundError):
            state_path(stack).unlink()
        return None
    head = head_of(stack.app_dir)
    if head is None:
        return None
    if hook and (head.under_way or os.environ.get("GIT_REFLOG_ACTION", "").startswith("rebase")):
        return None
    base = str(config.get("branch_base") or "")
    try:
        followed = follow(stack, say, head, base)
    except AdminUnreachable as exc:
        say(f"warning: the database could not follow {head.describe()}: {exc.cause}")
        return None
    if followed and followed.switched:
        from devkit import branch_catalog

        keep, max_mb = int(config.get("branch_keep") or 0), int(config.get("branch_max_mb") or 0)
        doomed = branch_catalog.over_budget(stack, keep, base, max_mb)
        if doomed:
            say(
                f"other branches' databases beyond devkit.branch_keep ({keep or 'no limit'}) or "
                f"devkit.branch_max_mb ({max_mb or 'no limit'}): the least recently used go"
            )
            branch_catalog.drop(stack, doomed, say)
    return followed


def follow_checkout(config) -> None:
    """What the post-checkout hook runs (`devkit branches.follow --hook`) in each app of the
    repository: follow_app, quiet during a rebase or a bisect."""
    from devkit.app import app_of_directory
    from devkit.errors import SetupRequired

    if app_of_directory() is None:
        return  # the hook names a directory that holds no app (any more): never another app
    try:
        follow_app(config, hook=True, strict=True)
    except SetupRequired:
        # A new worktree (`git worktree add` checks out in it): no stack of its own yet.
        print("devkit: this checkout's app has no stack yet: `devkit setup` here makes one")
