"""The app's .env.local: the values the kit writes there, reading them back, and drift.

The stack role (Ansible) writes the file from `env_values`; everyday tasks read it back with
`load_stack`, which needs no settings validation: the file was written from validated settings.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from devkit.errors import DevkitError, SetupRequired
from devkit.paths import ENV_FILE_NAME
from devkit.state import resolve_app_dir

if TYPE_CHECKING:
    from devkit.settings import Settings

PASSWORD_KEYS = ("PGPASSWORD", "REDIS_PASSWORD")
# Keys holding a password or a URL with one: never printed.
SECRET_KEYS = frozenset(
    {*PASSWORD_KEYS, "DB_PASSWORD", "DATABASE_URL", "DATABASE_URL_SYNC", "REDIS_URL"}
)
# Settings recorded in .env.local as they are, and the key that records each.
RECORDED = {
    "project_name": "DEVKIT_PROJECT_NAME",
    "bind_address": "DEVKIT_BIND_ADDRESS",
    "postgres_port": "PGPORT",
    "postgres_user": "PGUSER",
    "postgres_db": "PGDATABASE",
    "redis_port": "REDIS_PORT",
}


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
        "DEVKIT_POSTGRES_IMAGE",
        "DEVKIT_REDIS_IMAGE",
    }
)


def subprocess_environ() -> dict[str, str]:
    """This process's environment without the kit's keys: Compose lets the shell override the env
    file, so an exported PGPASSWORD or PGPORT would otherwise reconfigure the containers."""
    return {key: value for key, value in os.environ.items() if key not in MANAGED_KEYS}


class EnvFileError(DevkitError):
    """The env file cannot be read as Compose reads it. The message never holds a value."""


def read_env_file(path: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The file's values as Compose reads them; {} when there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise EnvFileError(
            f"{path} is a directory, not an env file",
            f"move it away (mv {path} {path}.dir), then run `invoke setup` to write the file",
        ) from None
    except PermissionError:
        raise EnvFileError(
            f"{path} cannot be read by user {getpass.getuser()}",
            f"give it back to that user: sudo chown $USER {path}",
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EnvFileError(
            f"{path} is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line})",
            "save it as UTF-8 (Compose reads only UTF-8); e.g. iconv -f latin1 -t utf-8",
        ) from None
    try:
        return parse_env(text.removeprefix("\ufeff"), environ)
    except ValueError as exc:
        raise EnvFileError(
            f"{path}: {exc}", "correct that line as Compose reads env files (KEY=value)"
        ) from None


# Compose's .env rules (compose-go's dotenv, as `docker compose config` shows them; every form is
# checked against it in tests/integration/test_envfile_compose.py):
# - `KEY=value`, `export KEY=value`, `KEY: value`; spaces around the key; `#` lines are comments;
# - unquoted: up to the line's end; a ` #` starts a comment; surrounding blanks are dropped;
#   `$NAME`, `${NAME}` and `${NAME:-default}` (`-`, `:+`, `+` too) are expanded, `$$` is `$`;
# - 'single quotes': as written (\' is '), over several lines if need be;
# - "double quotes": the escapes \n \r \t \" \\ \$ (other backslashes stay), expansion;
#   several lines;
# - after a closing quote the next statement starts (a `# comment`, or more KEY=value).
# Expansion sees the keys above it, then `environ` (Compose: the shell's environment).
_KEY = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z0-9_.]+)[ \t]*([=:]?)[ \t]*")
_EXPANSION = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-+?])"
    r"(?P<word>(?:[^}\\]|\\.)*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# Escapes in double quotes; any other backslash stays as written.
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}
# In double quotes: an escape, or else an expansion (so `\$x` is a plain `$x`).
_ESCAPE_OR_EXPANSION = re.compile(r"\\(?P<escape>[nrt\"\\$])|" + _EXPANSION.pattern)


def _expand(
    value: str, known: Mapping[str, str], environ: Mapping[str, str], escapes: bool = False
) -> str:
    def one(match: re.Match[str]) -> str:
        if match.groupdict().get("escape"):
            return _ESCAPES[match["escape"]]
        if match[0] == "$$":
            return "$"
        name = match["braced"] or match["bare"]
        value = known.get(name, environ.get(name))
        operator, word = match["operator"], match["word"] or ""
        if not operator:
            return value or ""
        empty = value is None or (operator.startswith(":") and value == "")
        if operator.endswith("-"):
            return word if empty else value
        if operator.endswith("+"):
            return "" if empty else word
        if empty:
            raise ValueError(f"${{{name}}} is required but not set")
        return value

    return (_ESCAPE_OR_EXPANSION if escapes else _EXPANSION).sub(one, value)


def parse_env(text: str, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """KEY=VALUE statements as Compose reads them; ValueError (naming the line, never a value)
    for what Compose refuses."""
    environ = subprocess_environ() if environ is None else environ
    values: dict[str, str] = {}
    pos, length = 0, len(text)
    while True:
        while pos < length and text[pos].isspace():
            pos += 1
        if pos >= length:
            return values
        line_no = text.count("\n", 0, pos) + 1
        end_of_line = text.find("\n", pos)
        end_of_line = length if end_of_line < 0 else end_of_line
        if text[pos] == "#":
            pos = end_of_line
            continue
        match = _KEY.match(text, pos, end_of_line)
        if not match or not match[2]:
            if match and match.end() == end_of_line:  # a bare KEY: taken from the environment
                if match[1] in environ:
                    values[match[1]] = environ[match[1]]
                pos = end_of_line
                continue
            raise ValueError(f"line {line_no} is not KEY=value")
        key, pos = match[1], match.end()
        quote = text[pos : pos + 1]
        if quote in ("'", '"'):
            close = pos + 1
            while True:
                close = text.find(quote, close)
                if close < 0:
                    raise ValueError(f"line {line_no}: the value's {quote} quote is never closed")
                if text[close - 1] != "\\":
                    break
                close += 1
            raw = text[pos + 1 : close]
            if quote == "'":
                value = raw.replace("\\'", "'")
            else:
                value = _expand(raw, values, environ, escapes=True)
            pos = close + 1  # Compose reads on from here: a `# comment` or the next statement
        else:
            raw = text[pos:end_of_line]
            comment = raw.find(" #")
            raw = raw[:comment] if comment >= 0 else raw
            value = _expand(raw.strip(), values, environ)
            pos = end_of_line
        values[key] = value


MIN_PASSWORD_LENGTH = 16
# The placeholders of the inventories' vault.yml.example: long enough, and public.
_PLACEHOLDER = "change-me"
# Written unquoted into .env.local, these would be cut, expanded or unescaped by Compose.
_UNSAFE_IN_ENV_FILE = re.compile(r"[\s$#'\"\\]")


def password_problem(password: str) -> str:
    """Why a given password (a server's, from the vault) may not be used; "" when it may."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"is shorter than {MIN_PASSWORD_LENGTH} characters"
    if _PLACEHOLDER in password.lower():
        return "is still the example's CHANGE-ME placeholder"
    if _UNSAFE_IN_ENV_FILE.search(password):
        return "holds a character an env file reads differently (a blank, $, #, a quote or \\)"
    return ""


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
        "PGPASSWORD": pg_password,
        "DB_HOST": host,
        "DB_PORT": pg_port,
        "DB_USER": user,
        "DB_PASSWORD": pg_password,
        "DB_NAME": db,
        "REDIS_PASSWORD": redis_password,
        "DEVKIT_APP_DIR": str(settings.resolved_app_dir()),
        **{env_key: str(getattr(settings, key)) for key, env_key in RECORDED.items()},
    }


def drift(config: Mapping[str, Any], recorded: dict[str, str]) -> list[str]:
    """Recorded settings whose configured value differs from the file, as `KEY file -> wanted`."""
    return [
        f"{env_key} {recorded.get(env_key, '(unset)')} -> {config[key]}"
        for key, env_key in RECORDED.items()
        if str(config[key]) != recorded.get(env_key)
    ]


# What everyday tasks read back from .env.local.
STACK_KEYS = (
    *PASSWORD_KEYS,
    *RECORDED.values(),
    "DATABASE_URL_SYNC",
    "DEVKIT_POSTGRES_IMAGE",
    "DEVKIT_REDIS_IMAGE",
)


@dataclass(frozen=True)
class Stack:
    """How to reach this app's stack, read back from its .env.local (`values`)."""

    env_file: Path
    values: dict[str, str]
    ready_timeout: float
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


def load_stack(config: Mapping[str, Any]) -> Stack:
    """The app's stack per its .env.local, given the kit's config (Invoke's `devkit` section).

    SetupRequired when the file is missing or the config changed since setup; SettingsError
    when the config itself is invalid (validated here only then, to keep everyday tasks fast).
    """
    config = dict(config)
    env_file = resolve_app_dir(str(config.get("app_dir") or "")) / ENV_FILE_NAME
    values = read_env_file(env_file)
    if not values:
        raise SetupRequired(f"{env_file} is missing or empty", "run `invoke setup`")
    missing = [key for key in STACK_KEYS if key not in values]
    if missing:
        raise SetupRequired(
            f"{env_file} lacks {', '.join(missing)} (setup writes them)",
            "run `invoke setup`: it adds the kit's keys and keeps every other line",
        )
    for key in ("PGPORT", "REDIS_PORT"):
        if not values[key].isdigit() or not 0 < int(values[key]) < 65536:
            raise SetupRequired(
                f"{key} in {env_file} is not a port number",
                f"run `invoke setup` to write it again (from devkit.{'postgres_port' if key == 'PGPORT' else 'redis_port'})",
            )
    changed = drift(config, values)
    try:
        ready_timeout = float(config["ready_timeout"])
    except (TypeError, ValueError):
        ready_timeout = 0.0
    if changed or ready_timeout <= 0:
        from devkit.settings import load_settings

        load_settings(config)  # raises SettingsError naming a bad value
        if changed:
            raise SetupRequired(
                f"settings changed since setup ({'; '.join(changed)})",
                "run `invoke setup` to apply them",
            )
    return Stack(
        env_file=env_file,
        values=values,
        ready_timeout=ready_timeout,
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
