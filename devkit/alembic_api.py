"""The app's Alembic migrations through Alembic's Python API.

The app keeps its own `alembic.ini` and `env.py`; the kit passes the database URL in the
Alembic config (`sqlalchemy.url`), keeps the database first before any upgrade or downgrade that
changes something (a snapshot, or a backup file: devkit/safety_net.py), and turns Alembic's
known errors into a cause and a fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devkit.backup.target import Target
from devkit.errors import DevkitError

if TYPE_CHECKING:
    from alembic.config import Config

    from devkit.envfile import Stack
    from devkit.safety_net import SafetyNet

CONFIG_NAME = "alembic.ini"


class MigrationError(DevkitError):
    """A migration command failed or cannot run."""


def has_migrations(app_dir: Path) -> bool:
    return (app_dir / CONFIG_NAME).is_file()


def import_ahead(app_dir: Path) -> None:
    """Import Alembic (0.3 s, SQLAlchemy with it) in a thread of its own when APP_DIR has
    migrations, for a caller about to wait on the server before it migrates (a new branch's
    file-level copy): the wait and the import then overlap. A failure is left to the import that
    needs it, which raises it where it is explained."""
    if not has_migrations(app_dir):
        return
    import threading

    def load() -> None:
        try:
            import alembic.command  # noqa: F401
        except Exception:  # raised again, and explained, by the import that needs it
            return

    threading.Thread(target=load, name="alembic-import").start()


def sqlalchemy_url(target: Target) -> str:
    if not target.dsn:  # PG* variables only: libpq reads them itself
        return f"postgresql+psycopg2:///{target.database}"
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg2://", target.dsn)


def alembic_config(app_dir: Path, target: Target) -> Config:
    from alembic.config import Config

    ini = app_dir / CONFIG_NAME
    if not ini.is_file():
        raise MigrationError(
            f"no {CONFIG_NAME} in {app_dir}",
            "point the kit at your app (`devkit setup --app-dir PATH`), or create one there with `alembic init migrations`",
        )
    config = Config(str(ini))
    # ConfigParser interpolation: a % in a password must be doubled.
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(target).replace("%", "%%"))
    return config


def explain(exc: BaseException) -> MigrationError:
    """Alembic's and the driver's known errors as a cause and a fix."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    if "Target database is not up to date" in text:
        return MigrationError(
            "the database is behind the newest migration (Alembic: Target database is not up to date)",
            "apply the pending migrations first: devkit db.migrate",
        )
    if m := re.search(r"Can't locate revision identified by '([^']+)'", text):
        return MigrationError(
            f"revision {m[1]} is not among the app's migrations (a file was deleted or moved, or "
            "the database was migrated from another branch)",
            "restore that migration file (git log -- migrations/versions), or, if the data can go: devkit db.reset",
        )
    if "Multiple head" in text or "multiple heads" in text.lower():
        return MigrationError(
            "the migrations have several heads (revisions were added on parallel branches)",
            "merge them: devkit db.merge-heads, then devkit db.migrate",
        )
    if "password authentication failed" in text:
        return MigrationError(
            f"the database rejected the password: {first}",
            "keep the data: `devkit doctor --repair` sets the server's password to .env.local's",
        )
    if (
        "could not connect" in text
        or "Connection refused" in text
        or "connection to server" in text
    ):
        return MigrationError(
            f"cannot reach the database: {first}",
            "start the stack: devkit up (or check DATABASE_URL)",
        )
    return MigrationError(f"migration failed: {first}", "read Alembic's message above")


def _run(body: Callable[[], object]) -> object:
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return body()
    except (CommandError, SQLAlchemyError, KeyError) as exc:
        raise explain(exc) from None


def database_heads(config: Config) -> tuple[str, ...]:
    """The revisions the database is at (empty: never migrated)."""
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, pool

    def read() -> tuple[str, ...]:
        engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
        try:
            with engine.connect() as connection:
                return tuple(MigrationContext.configure(connection).get_current_heads())
        finally:
            engine.dispose()

    return _run(read)  # type: ignore[return-value]


def script_heads(config: Config) -> tuple[str, ...]:
    from alembic.script import ScriptDirectory

    return tuple(ScriptDirectory.from_config(config).get_heads())


def steps(config: Config, destination: str, direction: str, current: tuple[str, ...]) -> list[str]:
    """The revisions an upgrade or downgrade from `current` (the database's heads) to
    `destination` would run, in order ("a -> b")."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)

    def plan() -> list[str]:
        # The same planning Alembic's own upgrade()/downgrade() commands do.
        if direction == "up":
            found = script._upgrade_revs(destination, current)
        else:
            found = script._downgrade_revs(destination, current)
        return [str(step) for step in found]

    return _run(plan)  # type: ignore[return-value]


@dataclass
class MigrationRun:
    before: tuple[str, ...]
    after: tuple[str, ...]
    steps: list[str] = field(default_factory=list)
    kept: SafetyNet | None = None  # what was kept first (a snapshot or a backup file)


def _app_has_data(target: Target) -> bool:
    from devkit.backup.catalog import app_tables
    from devkit.backup.session import connect

    conn = connect(target)
    try:
        with conn.cursor() as cur:
            return bool(app_tables(cur))
    finally:
        conn.close()


def migrate(
    app_dir: Path,
    target: Target,
    destination: str,
    direction: str,
    keep_first: Callable[[], SafetyNet] | None,
) -> MigrationRun:
    """Upgrade ("up") or downgrade ("down") to `destination`. When that changes something and
    the database has any table, `keep_first` keeps it first (devkit/safety_net.py)."""
    from alembic import command

    config = alembic_config(app_dir, target)
    before = database_heads(config)
    planned = steps(config, destination, direction, before)
    run = MigrationRun(before=before, after=before, steps=planned)
    if not planned:
        return run
    if keep_first is not None and _app_has_data(target):
        run.kept = keep_first()
    if direction == "up":
        _run(lambda: command.upgrade(config, destination))
    else:
        _run(lambda: command.downgrade(config, destination))
    run.after = database_heads(config)
    return run


def revision(app_dir: Path, target: Target, message: str, autogenerate: bool) -> Path:
    from alembic import command

    config = alembic_config(app_dir, target)
    made = _run(lambda: command.revision(config, message=message, autogenerate=autogenerate))
    scripts = made if isinstance(made, list) else [made]
    return Path(scripts[0].path)


def merge_heads(app_dir: Path, target: Target, message: str) -> Path:
    from alembic import command

    config = alembic_config(app_dir, target)
    heads = script_heads(config)
    if len(heads) < 2:
        raise MigrationError(
            f"nothing to merge: the migrations have one head ({heads[0] if heads else 'none'})",
            "devkit db.migrate applies it",
        )
    made = _run(lambda: command.merge(config, "heads", message=message))
    return Path(made.path)


def show(app_dir: Path, target: Target, what: str) -> None:
    """`alembic current` or `alembic history`, printed by Alembic."""
    from alembic import command

    config = alembic_config(app_dir, target)
    if what == "current":
        _run(lambda: command.current(config, verbose=False))
    else:
        _run(lambda: command.history(config, verbose=True, indicate_current=True))


def app_of(config: Mapping[str, Any]) -> tuple[Path, Target]:
    """The app's directory and the database its migrations run on, per the kit's config."""
    from devkit.app import resolve_app_dir
    from devkit.backup.target import resolve_target

    return resolve_app_dir(str(config.get("app_dir") or "")), resolve_target(config)


def migrate_app(
    config: Mapping[str, Any],
    destination: str,
    direction: str,
    backup: bool = True,
    stack: Stack | None = None,
    backup_file: bool = False,
) -> MigrationRun:
    """migrate() for the configured app (db.migrate, db.downgrade), or for the stack's own
    database whatever DATABASE_URL says (setup passes the stack). With `backup`, the database is
    kept first: a snapshot on this machine's stack, else (or with `backup_file`) a backup file
    in the backup directory (devkit/safety_net.py)."""
    import sys

    from devkit.backup.target import stack_target
    from devkit.safety_net import keep_first

    if stack is None:
        app_dir, target = app_of(config)
    else:
        app_dir, target = stack.env_file.parent, stack_target(stack.values)
    task = "db.migrate" if direction == "up" else "db.downgrade"

    def keep() -> SafetyNet:
        return keep_first(
            config, target, task, backup_file, say=lambda line: print(line, file=sys.stderr)
        )

    run = migrate(app_dir, target, destination, direction, keep if backup else None)
    if run.kept:
        run.kept.prune_older(lambda line: print(line, file=sys.stderr))
    return run
