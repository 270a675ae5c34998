"""The app's .env.local: the values the kit writes there, reading them back, and drift.

The stack role (Ansible) writes the file from `env_values`; everyday tasks read it back with
`load_stack`, which needs no settings validation: the file was written from validated settings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devkit import dotenv, memory, wal_level
from devkit.app import resolve_app_dir
from devkit.dotenv import EnvFileError
from devkit.errors import SetupRequired
from devkit.passwords import new_password
from devkit.paths import ENV_FILE_NAME
from devkit.services import IMAGE_KEYS, PASSWORD_KEYS, SERVICES
from devkit.settings.table import DEFAULTS, PER_APP, RECORDED, SETTINGS, check_known

if TYPE_CHECKING:
    from devkit.settings.model import Settings

# Keys holding a password or a URL with one: never printed.
SECRET_KEYS = frozenset(
    {*PASSWORD_KEYS, "DB_PASSWORD", *(key for s in SERVICES.values() for key in s.url_keys)}
)
# Every key the kit writes (env_values, plus the images the images role chose).
MANAGED_KEYS = frozenset(
    {
        *SECRET_KEYS,
        *RECORDED.values(),
        "PGHOST",
        "DB_HOST",
        "DB_PORT",
        "DB_USER",
        "DB_NAME",
        "DEVKIT_APP_DIR",
        *IMAGE_KEYS,
        *memory.ENV_KEYS,
        wal_level.SENDERS_KEY,
    }
)


def subprocess_environ() -> dict[str, str]:
    """This process's environment without the kit's keys: Compose lets the shell override the env
    file, so an exported PGPASSWORD or PGPORT would otherwise reconfigure the containers."""
    return {key: value for key, value in os.environ.items() if key not in MANAGED_KEYS}


def read_env_file(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """An env file's values as Compose reads them, expanding from this process's environment
    without the kit's keys (as the kit runs Compose); {} when there is no file."""
    return dotenv.read_env_file(path, subprocess_environ() if environ is None else environ)


def parse_env(text: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """read_env_file's rules for text (a file read elsewhere: through testinfra, say)."""
    return dotenv.parse_env(text, subprocess_environ() if environ is None else environ)


def env_values(
    settings: Settings, existing: dict[str, str], memory_mb: int | None = None
) -> dict[str, str]:
    """What .env.local must hold: the app's contract (docs/ARCHITECTURE.md, "The app's
    .env.local") and compose.yaml's inputs, with the services' memory sized for the machine
    (devkit/memory.py): the memory_mb setting, else MEMORY_MB (a server's, read there), else
    this machine's.

    Passwords already in the file are kept: a volume initialised with one only accepts that one.
    The per-app settings must be settled first (devkit.stacks.settle).
    """
    unsettled = [name for name in PER_APP if not getattr(settings, name)]
    if unsettled:
        raise ValueError(f"settle {', '.join(unsettled)} before writing .env.local")
    values: dict[str, str] = {}
    for service in SERVICES.values():
        password = existing.get(service.password_key) or new_password()
        port = getattr(settings, service.port_setting)
        values[service.password_key] = password
        values.update(_URLS[service.kind](service, settings, password, port))
    return {
        **values,
        "DEVKIT_APP_DIR": str(settings.resolved_app_dir()),
        **{env_key: str(getattr(settings, key)) for key, env_key in RECORDED.items()},
        wal_level.SENDERS_KEY: wal_level.senders(settings.postgres_wal_level),
        **memory.sizing(memory.planned_mb(settings.memory_mb, memory_mb)).env(),
    }


def _postgres_urls(service, settings: Settings, password: str, port: int) -> dict[str, str]:
    host, user, db = settings.host, settings.postgres_user, settings.postgres_db
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{db}"
    asyncpg, sync = service.url_keys
    return {
        asyncpg: f"postgresql+asyncpg://{auth}",
        sync: f"postgresql://{auth}",
        "PGHOST": host,
        "DB_HOST": host,
        "DB_PORT": str(port),
        "DB_USER": user,
        "DB_PASSWORD": password,
        "DB_NAME": db,
    }


def _redis_urls(service, settings: Settings, password: str, port: int) -> dict[str, str]:
    (url,) = service.url_keys
    return {url: f"redis://:{quote(password, safe='')}@{settings.host}:{port}/0"}


# Each kind's keys in .env.local beside its password and port (devkit.services.KINDS).
_URLS = {"postgres": _postgres_urls, "redis": _redis_urls}


def drift(config: Mapping[str, Any], recorded: dict[str, str]) -> list[str]:
    """Recorded settings whose configured value differs from the file, as `KEY file -> wanted`."""
    return [
        f"{env_key} {recorded.get(env_key, '(unset)')} -> {config[key]}"
        for key, env_key in RECORDED.items()
        # A per-app setting left unset keeps what the app's first setup chose.
        if (config[key] or key not in PER_APP)
        and str(config[key]) != recorded.get(env_key)
        # A key newer than the file, its setting not asked for: the services run as before
        # until the next setup writes it.
        and (env_key in recorded or config[key] != DEFAULTS[key] or not _later(key))
    ]


def _later(key: str) -> bool:
    return SETTINGS[key].key_may_be_missing


def unchecked(config: Mapping[str, Any], recorded: dict[str, str]) -> list[str]:
    """The settings set (not their default) that setup has not checked: those .env.local does
    not record as they are. Everyday tasks validate the settings only when there is one, to
    start fast (pydantic's import is about 0.15 s)."""
    return [
        key
        for key, default in DEFAULTS.items()
        if key != "app_dir"
        and config.get(key, default) != default
        and (key not in RECORDED or str(config[key]) != recorded.get(RECORDED[key]))
    ]


# What everyday tasks read back from .env.local (a key added after a release may be missing).
STACK_KEYS = (
    *PASSWORD_KEYS,
    *(env_key for key, env_key in RECORDED.items() if not _later(key)),
    "DATABASE_URL_SYNC",
    *IMAGE_KEYS,
)
# What compose.yaml reads from the file, beside the images (the stack role checks them).
COMPOSE_INPUTS = (
    "DEVKIT_PROJECT_NAME",
    "DEVKIT_APP_DIR",
    "PGUSER",
    "PGDATABASE",
    *(key for s in SERVICES.values() for key in (s.port_key, s.password_key)),
)


@dataclass(frozen=True)
class Stack:
    """How to reach this app's stack, read back from its .env.local (`values`)."""

    env_file: Path
    values: dict[str, str]
    ready_timeout: float
    project: str
    host: str
    # Each service's host port and password (devkit.services), by its name.
    ports: dict[str, int]
    passwords: dict[str, str]
    pg_user: str
    pg_database: str

    # The database and the Redis the kit's data tasks work on.
    @property
    def app_dir(self) -> Path:
        """The app's directory: where its .env.local is."""
        return self.env_file.parent

    @property
    def pg_port(self) -> int:
        return self.ports["postgres"]

    @property
    def pg_password(self) -> str:
        return self.passwords["postgres"]

    @property
    def redis_port(self) -> int:
        return self.ports["redis"]

    @property
    def redis_password(self) -> str:
        return self.passwords["redis"]

    def image(self, service: str) -> str:
        return self.values[SERVICES[service].image_key]


def load_stack(config: Mapping[str, Any]) -> Stack:
    """The app's stack per its .env.local, given the kit's config (Invoke's `devkit` section).

    SetupRequired when the file is missing or the config changed since setup; SettingsError
    when the config itself is invalid (validated here only then, to keep everyday tasks fast).
    """
    config = dict(config)
    check_known(config)
    env_file = resolve_app_dir(str(config.get("app_dir") or "")) / ENV_FILE_NAME
    values = read_env_file(env_file)
    if not values:
        raise SetupRequired(f"{env_file} is missing or empty", "run `devkit setup`")
    check_stack_values(env_file, values)
    check_own_directory(env_file, values)
    changed = drift(config, values)
    try:
        ready_timeout = float(config["ready_timeout"])
    except (TypeError, ValueError):
        ready_timeout = 0.0
    if changed or ready_timeout <= 0 or unchecked(config, values):
        from devkit.settings.model import load_settings

        load_settings(config)  # raises SettingsError naming a bad value
        if changed:
            raise SetupRequired(
                f"settings changed since setup ({'; '.join(changed)})",
                "run `devkit setup` to apply them",
            )
    return stack_of(env_file, values, ready_timeout)


def check_stack_values(env_file: Path, values: dict[str, str]) -> None:
    """SetupRequired unless `values` (of `env_file`) hold what the kit's tasks read."""
    missing = [key for key in STACK_KEYS if key not in values]
    if missing:
        raise SetupRequired(
            f"{env_file} lacks {', '.join(missing)} (setup writes them)",
            "run `devkit setup`: it adds the kit's keys and keeps every other line",
        )
    project = values["DEVKIT_PROJECT_NAME"]
    if not re.fullmatch(SETTINGS["project_name"].limits["pattern"], project) or not project:
        raise SetupRequired(
            f"DEVKIT_PROJECT_NAME in {env_file} is not a project name ({project[:40]!r}: "
            "lower-case letters, digits, - and _)",
            "delete that line and run `devkit setup` (it names the app's stack again)",
        )
    for service in SERVICES.values():
        key = service.port_key
        if not values[key].isdigit() or not 0 < int(values[key]) < 65536:
            raise SetupRequired(
                f"{key} in {env_file} is not a port number",
                f"run `devkit setup` to write it again (from devkit.{service.port_setting})",
            )


def check_own_directory(env_file: Path, values: dict[str, str]) -> None:
    """DataConflict when `env_file` was written for another app directory that is still there
    (`cp -a app app-copy`): the copy's tasks would act on the original's database and Redis.
    A directory that is gone (the app was moved: setup takes the stack over) is no conflict;
    one that cannot be looked at (another user's) may still be there, and is one."""
    recorded = values.get("DEVKIT_APP_DIR", "")
    here = env_file.parent
    if not recorded or Path(recorded) == here:
        return
    try:
        if os.path.samefile(recorded, here):
            return
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError:
        pass
    from devkit.errors import DataConflict

    raise DataConflict(
        f"{env_file} was written for the app in {recorded}, which is still there: this directory "
        "is a copy, and its tasks would act on that app's database and Redis",
        "give the copy a stack of its own: delete the lines DEVKIT_PROJECT_NAME, "
        f"{' and '.join(s.port_key for s in SERVICES.values())} from {env_file}, then `devkit setup` here (the app moved here and "
        f"{recorded} is an old copy? `devkit setup` here takes the stack over)",
    )


def stack_of(env_file: Path, values: dict[str, str], ready_timeout: float = 0.0) -> Stack:
    """The Stack an .env.local's `values` describe (load_stack has checked them)."""
    return Stack(
        env_file=env_file,
        values=values,
        ready_timeout=ready_timeout,
        project=values["DEVKIT_PROJECT_NAME"],
        host=values["PGHOST"],
        ports={name: int(values[s.port_key]) for name, s in SERVICES.items()},
        passwords={name: values[s.password_key] for name, s in SERVICES.items()},
        pg_user=values["PGUSER"],
        pg_database=values["PGDATABASE"],
    )


def main(argv: list[str] | None = None) -> int:
    """`.venv/bin/python -m devkit.envfile FILE KEY`: print KEY's value as Compose reads FILE (for the
    scheduled backup's script: one parser of .env.local). Exit 1 when FILE does not set KEY."""
    import sys

    path, key = argv if argv is not None else sys.argv[1:]
    try:
        value = read_env_file(Path(path)).get(key)
    except EnvFileError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    if value is None:
        print(f"error: {path} does not set {key}\n  fix: run `devkit setup`", file=sys.stderr)
        return 1
    print(value)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
