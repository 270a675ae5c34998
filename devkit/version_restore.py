"""Restoring a backup taken at another migration version of the app (db.restore).

When the backup's Alembic revision is not the database's and the app's migrations know it, the
restore goes: the schema migrated to the backup's revision, the data loaded (one transaction),
the schema migrated back to where the database was (or to head). Each step is Alembic's or the
loader's own transaction; the database is first kept as a snapshot (devkit/safety_net.py), and a
failure at any step puts that snapshot back, so the database ends as it was. This needs the
stack's own database (a snapshot); a database elsewhere is refused with the steps to take by
hand. A revision the app does not have is refused with the list of those it has; a schema the
user knows to match skips all this with --allow-other-version.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from devkit.backup.session import BackupError
from devkit.backup.target import Target
from devkit.envfile import Stack
from devkit.errors import DevkitError

T = TypeVar("T")


@dataclass(frozen=True)
class VersionPlan:
    backup: str  # the backup's revision
    current: str  # the database's
    back_to: str  # where the schema goes after the load: `current`, or the app's head
    app_dir: Path

    def describe(self) -> str:
        return (
            f"the backup is at migration {self.backup}, the database at {self.current}: the "
            f"schema is migrated to {self.backup}, the data loaded, then the schema migrated to "
            f"{self.back_to}"
        )


def _direction(config, current: str, destination: str) -> str:
    """ "down" when DESTINATION is an ancestor of CURRENT, else "up"."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    ancestors = {rev.revision for rev in script.iterate_revisions(current, "base")}
    return "down" if destination in ancestors else "up"


def plan(
    config: Mapping[str, Any], target: Target, path: Path, to_head: bool = False
) -> VersionPlan | None:
    """How to restore PATH into TARGET across migration versions; None when the backup is at
    the database's revision. Raises (changing nothing) when that cannot be done."""
    from devkit.backup.catalog import migration_version
    from devkit.backup.reader import BackupReader
    from devkit.backup.session import connect

    with BackupReader(path) as reader:
        backup = reader.metadata.migration_version
    conn = connect(target)
    try:
        with conn.cursor() as cur:
            current = migration_version(cur)
    finally:
        conn.close()
    if backup == current:
        return None  # (Alembic, 0.3-0.5 s to import, is not needed)
    from alembic.script import ScriptDirectory

    from devkit.alembic_api import alembic_config, has_migrations, script_heads
    from devkit.app import resolve_app_dir

    keep = "pass --allow-other-version if you know the schemas match"
    if not backup:
        raise BackupError(
            f"the backup records no migration version (its database was made without Alembic: "
            f"init_db, create_all), the database is at {current}",
            f"restore it as it is, the tables being the app's: devkit db.restore {path} "
            "--allow-other-version",
        )
    app_dir = resolve_app_dir(str(config.get("app_dir") or ""))
    if not backup or not current or not has_migrations(app_dir):
        raise BackupError(
            f"the backup is at migration {backup or '(none)'}, the database at "
            f"{current or '(none)'}, and the kit cannot migrate between them"
            + ("" if has_migrations(app_dir) else f" (no alembic.ini in {app_dir})"),
            f"migrate the database to the backup's version first, or {keep}",
        )
    if "," in backup or "," in current:
        raise BackupError(
            f"the backup is at migrations {backup}, the database at {current}: several heads",
            f"migrate the database to the backup's revisions first, or {keep}",
        )
    config_ = alembic_config(app_dir, target)
    known = [rev.revision for rev in ScriptDirectory.from_config(config_).walk_revisions()]
    for revision, whose in ((backup, "the backup"), (current, "the database")):
        if revision not in known:
            raise BackupError(
                f"{whose} is at migration {revision}, which the app's migrations in {app_dir} do "
                f"not have (they have: {', '.join(known)})",
                "check out the code that has it (git log -- migrations/versions), or " + keep,
            )
    heads = script_heads(config_)
    back_to = heads[0] if to_head and len(heads) == 1 else current
    return VersionPlan(backup, current, back_to, app_dir)


def unknown_revision(config: Mapping[str, Any], path: Path) -> tuple[str, str] | None:
    """(the backup's revision, the app's head) when the app's migrations do not have the
    revision the backup records (a restore with --allow-other-version writes it into
    alembic_version); None when they have it, or there is none to check."""
    from alembic.script import ScriptDirectory

    from devkit.alembic_api import alembic_config, has_migrations
    from devkit.app import resolve_app_dir
    from devkit.backup.reader import BackupReader

    with BackupReader(path) as reader:
        backup = reader.metadata.migration_version
    app_dir = resolve_app_dir(str(config.get("app_dir") or ""))
    if not backup or not has_migrations(app_dir):
        return None
    script = ScriptDirectory.from_config(alembic_config(app_dir, Target("", "", "")))
    known = {rev.revision for rev in script.walk_revisions()}
    missing = [one for one in backup.split(",") if one not in known]
    return (backup, ",".join(script.get_heads())) if missing else None


def restore_across(
    version_plan: VersionPlan,
    stack: Stack,
    snapshot: str,
    load: Callable[[], T],
    say: Callable[[str], None] = print,
) -> T:
    """Migrate the stack's database to the backup's revision (as the app, whose objects they
    are), `load()`, migrate to `back_to`. On any failure, an interrupt included, SNAPSHOT (the
    database as it was, kept first) is put back before the error is raised."""
    from devkit.alembic_api import alembic_config, database_heads, migrate
    from devkit.backup.target import stack_target

    target = stack_target(stack.values)
    config = alembic_config(version_plan.app_dir, target)

    def migrate_to(revision: str) -> None:
        at = database_heads(config)[0]
        if at != revision:
            direction = _direction(config, at, revision)
            migrate(version_plan.app_dir, target, revision, direction, None)
        say(f"schema migrated to {revision}")

    step = f"migrating to {version_plan.backup}"
    try:
        migrate_to(version_plan.backup)
        step = "loading the data"
        result = load()
        step = f"migrating to {version_plan.back_to}"
        migrate_to(version_plan.back_to)
        return result
    except BaseException as exc:
        from devkit import snapshots

        snapshots.put_back(stack, snapshot, say)
        if not isinstance(exc, Exception):
            raise
        cause = exc.cause if isinstance(exc, DevkitError) else str(exc).strip().splitlines()[0]
        raise BackupError(
            f"the restore failed while {step}: {cause}; the database was put back as it was "
            f"(snapshot {snapshot})",
            exc.hint if isinstance(exc, DevkitError) else "read the message above",
        ) from None
