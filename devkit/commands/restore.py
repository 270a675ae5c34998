"""db.restore's use case (docs/ARCHITECTURE.md, "Restore"): a backup file loaded into the app's
database after keeping what it replaces (devkit/safety_net.py).

`prepare` looks at the file and the database and changes nothing: what kind of file, which
database, the migration versions (a restore across them: devkit/version_restore.py); `compare`
reads the whole file and diffs it with the database; `run` keeps the database first, loads,
and says how to undo it. The task asks in between. Any restore (a file, one fetched from a
destination, a pull) goes through here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.errors import BadArgument


@dataclass(frozen=True)
class RestoreOptions:
    allow_other_version: bool = False  # load as it is although the migration versions differ
    exact: bool = False  # also empty the tables the backup does not have
    no_backup: bool = False  # keep nothing first
    to_head: bool = False  # across versions: migrate to head after, not back
    clean: bool = False  # a plain SQL dump into an empty database (the old one set aside)


@dataclass
class RestorePlan:
    path: Path
    options: RestoreOptions
    kind: str  # "backup" (the kit's file), "custom" (pg_dump -Fc) or "plain" (pg_dump > .sql)
    target: Any  # devkit.backup.target.Target: the database restored into
    stack: Any  # the stack when the target is its own database, else None
    listing: str = ""  # a pg_dump file's objects (pg_restore --list)
    crossing: Any = None  # devkit.version_restore.VersionPlan across migration versions

    @property
    def is_dump(self) -> bool:
        return self.kind != "backup"


@dataclass
class RestoreResult:
    diff: Any = None  # devkit.backup.diff.Diff (the kit's files)
    tables: int = 0
    rows: int = 0
    safety: Any = None  # devkit.safety_net.SafetyNet kept first (None with --no-backup)
    # --allow-other-version left a revision the app's migrations lack: (it, the app's head)
    unknown_revision: tuple[str, str] | None = None

    def undo(self) -> str:
        """The command that puts the database back as it was ("" when nothing was kept)."""
        if self.safety is None:
            return ""
        undo = self.safety.undo()
        if self.safety.backup and self.diff is not None:
            undo += " --exact"
            if self.diff.migration_version_backup != self.diff.migration_version_current:
                undo += " --allow-other-version"
        return undo


def prepare(config: Mapping[str, Any], path: Path, options: RestoreOptions) -> RestorePlan:
    """What restoring PATH would do, checked before anything changes (BadArgument, BackupError,
    DataConflict name what is wrong)."""
    from devkit.backup.pgdump import kind_of

    kind = kind_of(path) if path.is_file() else None
    if options.clean and kind != "plain":
        raise BadArgument(
            f"--clean is for a plain SQL dump (pg_dump > FILE.sql), and {path.name} is not one",
            "leave --clean out: the kit's backups replace the data of their tables, and "
            "pg_restore already drops a custom dump's objects first",
        )
    if kind:
        from devkit.backup import pgdump
        from devkit.backup.target import check_local, resolve_target, stack_target
        from devkit.envfile import load_stack

        stack = load_stack(config)
        if options.clean:
            check_local(stack, resolve_target(config), "db.restore --clean")
        return RestorePlan(
            path, options, kind, stack_target(stack.values), stack, pgdump.describe(stack, path)
        )
    from devkit.backup.target import resolve_target
    from devkit.safety_net import own_stack

    target = resolve_target(config)
    stack = own_stack(config, target)
    crossing = _crossing(config, target, stack, path, options)
    return RestorePlan(path, options, "backup", target, stack, crossing=crossing)


def _crossing(config, target, stack, path: Path, options: RestoreOptions):
    """The plan of a restore across migration versions, or None when the versions are the same
    or may differ (--allow-other-version)."""
    from devkit.backup.session import BackupError
    from devkit.version_restore import plan

    if options.allow_other_version:
        return None
    crossing = plan(config, target, path, options.to_head)
    if crossing is None:
        return None
    by_hand = (
        f"migrate the database to {crossing.backup} first (devkit db.migrate --revision "
        f"{crossing.backup}, or db.downgrade {crossing.backup}), restore, then migrate back"
    )
    if stack is None:
        raise BackupError(
            "a restore across migration versions needs the stack's own database (a failure is "
            "undone from a snapshot); DATABASE_URL names another one",
            by_hand,
        )
    if options.no_backup:
        raise BadArgument(
            "--no-backup cannot be used across migration versions: a failure is undone from the "
            "snapshot kept first",
            f"leave out --no-backup, or {by_hand}",
        )
    return crossing


def compare(plan: RestorePlan):
    """The whole file read and checked, and compared with the database: the Diff (the kit's
    files, at the database's migration version only; a crossing compares once migrated)."""
    from devkit.backup.load import restore_backup

    diff, _ = restore_backup(
        plan.target,
        plan.path,
        dry_run=True,
        allow_other_version=plan.options.allow_other_version,
        exact=plan.options.exact,
    )
    return diff


# A progress display for a pass over the rows (devkit.tasks._output.RowProgress): made with a
# title, used as a context manager, called per row count.
Progress = Callable[[str], contextlib.AbstractContextManager]


def _no_progress(title: str) -> contextlib.AbstractContextManager:
    return contextlib.nullcontext(None)


def run(
    config: Mapping[str, Any],
    plan: RestorePlan,
    say: Callable[[str], None] = print,
    progress: Progress = _no_progress,
    kept: Any = None,
) -> RestoreResult:
    """Restore as planned: keep the database first (unless --no-backup), load in one
    transaction, remove what was kept again when the load fails. KEPT: a SafetyNet the caller
    kept already, in its own safety_net.kept_around (db.pull keeps it while the server starts)."""
    if plan.is_dump:
        assert kept is None, "a pg_dump file keeps its own"
        return _run_dump(config, plan, say)
    from devkit.backup.dump import create_backup
    from devkit.backup.load import restore_backup
    from devkit.safety_net import kept_around

    def take(directory: Path) -> Path:
        with progress("Safety backup") as shown:
            return create_backup(plan.target, directory, progress=shown).path

    options = plan.options
    # One pass: the file is checked while it loads; any fault rolls the transaction back.
    keeping = (
        contextlib.nullcontext(kept)
        if kept is not None
        else kept_around(config, plan.target, "db.restore", options.no_backup, say, take)
    )
    with keeping as safety, progress("Restoring") as shown:
        if safety:
            say(f"Kept first: {safety}")

        def load():
            return restore_backup(
                plan.target,
                plan.path,
                allow_other_version=options.allow_other_version,
                exact=options.exact,
                progress=shown,
                check_first=False,
            )

        if plan.crossing:
            from devkit.version_restore import restore_across

            if not safety.snapshot:
                from devkit.backup.session import BackupError

                raise BackupError(
                    "a restore across migration versions needs a snapshot kept first, and none "
                    "was taken (devkit.snapshot_keep is 0, or the snapshot failed: see above)",
                    "set devkit.snapshot_keep above 0, or migrate the database to the backup's "
                    "version yourself first",
                )
            diff, loaded = restore_across(plan.crossing, plan.stack, safety.snapshot, load)
        else:
            diff, loaded = load()
    unknown = None
    if options.allow_other_version:
        from devkit.version_restore import unknown_revision

        unknown = unknown_revision(config, plan.path)
    return RestoreResult(diff, loaded.restored_tables, loaded.restored_rows, safety, unknown)


def _run_dump(config: Mapping[str, Any], plan: RestorePlan, say: Callable[[str], None]):
    from devkit.backup import pgdump

    stack = plan.stack
    if plan.options.clean:
        from devkit.safety_net import set_aside_around
        from devkit.settings import setting

        keep = setting(config, "snapshot_keep")
        with set_aside_around(stack, "db.restore", keep) as safety:
            say(f"Kept first: {safety} (the database as it was; an empty one takes its place)")
            pgdump.restore(stack, plan.path)
        return RestoreResult(safety=safety)
    from devkit.safety_net import kept_around

    with kept_around(
        config,
        plan.target,
        "db.restore",
        plan.options.no_backup,
        say,
        lambda directory: pgdump.dump(stack, directory),
    ) as safety:
        if safety:
            say(f"Kept first: {safety}")
        pgdump.restore(stack, plan.path)
    return RestoreResult(safety=safety)
