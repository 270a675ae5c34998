"""The app's .env.local: the values the kit writes there, reading them back, and drift.

The stack role (Ansible) writes the file; this module computes what goes in and reads it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from devkit.errors import SetupRequired
from devkit.settings import Settings

PASSWORD_KEYS = ("PGPASSWORD", "REDIS_PASSWORD")
# Keys holding a password or a URL with one: never printed.
SECRET_KEYS = frozenset(
    {*PASSWORD_KEYS, "DB_PASSWORD", "DATABASE_URL", "DATABASE_URL_SYNC", "REDIS_URL"}
)


def read_env_file(path: Path) -> dict[str, str]:
    """The file's values; {} when there is no file."""
    try:
        return parse_env(path.read_text())
    except FileNotFoundError:
        return {}


def parse_env(text: str) -> dict[str, str]:
    """Parse KEY=VALUE lines (optionally `export`ed, optionally quoted)."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def new_password() -> str:
    return secrets.token_urlsafe(24)


def env_values(settings: Settings, existing: dict[str, str]) -> dict[str, str]:
    """What .env.local must hold: the app's contract (ARCHITECTURE.md) and compose.yaml's inputs.

    Passwords already in the file are kept: a volume initialised with one only accepts that one.
    """
    pg_password = existing.get("PGPASSWORD") or new_password()
    redis_password = existing.get("REDIS_PASSWORD") or new_password()
    host, user, db = settings.host, settings.postgres_user, settings.postgres_db
    pg_port, redis_port = str(settings.postgres_port), str(settings.redis_port)
    pg_auth = f"{quote(user, safe='')}:{quote(pg_password, safe='')}@{host}:{pg_port}/{db}"
    return {
        "DATABASE_URL": f"postgresql+asyncpg://{pg_auth}",
        "DATABASE_URL_SYNC": f"postgresql://{pg_auth}",
        "REDIS_URL": f"redis://:{quote(redis_password, safe='')}@{host}:{redis_port}/0",
        "PGHOST": host,
        "PGPORT": pg_port,
        "PGUSER": user,
        "PGPASSWORD": pg_password,
        "PGDATABASE": db,
        "DB_HOST": host,
        "DB_PORT": pg_port,
        "DB_USER": user,
        "DB_PASSWORD": pg_password,
        "DB_NAME": db,
        "REDIS_PORT": redis_port,
        "REDIS_PASSWORD": redis_password,
        "DEVKIT_PROJECT_NAME": settings.project_name,
        "DEVKIT_BIND_ADDRESS": settings.bind_address,
    }


def drift(settings: Settings, existing: dict[str, str]) -> list[str]:
    """Non-secret values that differ between the settings and the file, as `KEY file -> wanted`."""
    wanted = env_values(settings, existing)
    return [
        f"{key} {existing.get(key, '(unset)')} -> {value}"
        for key, value in wanted.items()
        if key not in SECRET_KEYS and existing.get(key) != value
    ]


@dataclass(frozen=True)
class Stack:
    """How to reach this app's stack, read back from its .env.local."""

    env_file: Path
    project: str
    host: str
    pg_port: int
    pg_user: str
    pg_password: str
    pg_database: str
    redis_port: int
    redis_password: str
    postgres_image: str
    redis_image: str


def load_stack(settings: Settings) -> Stack:
    """Read the app's .env.local; SetupRequired when it is missing or settings changed since."""
    env_file = settings.resolved_app_dir() / ".env.local"
    values = read_env_file(env_file)
    if not all(key in values for key in (*PASSWORD_KEYS, "DEVKIT_POSTGRES_IMAGE")):
        raise SetupRequired(
            f"{env_file} is missing or was not written by setup", "run `invoke setup`"
        )
    changed = drift(settings, values)
    if changed:
        raise SetupRequired(
            f"settings changed since setup ({'; '.join(changed)})",
            "run `invoke setup` to apply them",
        )
    return Stack(
        env_file=env_file,
        project=values["DEVKIT_PROJECT_NAME"],
        host=values["PGHOST"],
        pg_port=int(values["PGPORT"]),
        pg_user=values["PGUSER"],
        pg_password=values["PGPASSWORD"],
        pg_database=values["PGDATABASE"],
        redis_port=int(values["REDIS_PORT"]),
        redis_password=values["REDIS_PASSWORD"],
        postgres_image=values["DEVKIT_POSTGRES_IMAGE"],
        redis_image=values["DEVKIT_REDIS_IMAGE"],
    )
