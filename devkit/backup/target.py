"""Which database a data task works on: DATABASE_URL / DATABASE_PUBLIC_URL / PG* from the
environment first (so the same task works against a remote database), else the app's .env.local."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from devkit.envfile import Stack

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


@dataclass(frozen=True)
class Target:
    dsn: str  # libpq connection string or URL
    host: str
    database: str

    @property
    def is_local(self) -> bool:
        return self.host in LOCAL_HOSTS or self.host.startswith("/")


# A % in a URL starts a percent-encoded byte (%25 is a % itself).
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _from_url(url: str, source: str = "DATABASE_URL") -> Target:
    """The URL's target; SettingsError, never echoing the URL (it holds the password), when it
    cannot be parsed."""
    from devkit.errors import SettingsError

    url = re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "postgresql" or _BAD_PERCENT.search(url):
        raise SettingsError(
            f"{source} is not a valid postgresql:// URL (a % not written as %25, a bad port, "
            "or another scheme); its value is not shown, it holds the password",
            f"correct {source}: postgresql://USER:PASSWORD@HOST:PORT/DB, with special characters "
            "in the password percent-encoded (python3 -c 'import urllib.parse,sys; "
            'print(urllib.parse.quote(sys.argv[1], safe=""))\' PASSWORD)',
        )
    return Target(url, parts.hostname or "", parts.path.lstrip("/"))


def stack_target(values: Mapping[str, str]) -> Target:
    """The stack's own database, from .env.local's values."""
    return _from_url(values["DATABASE_URL_SYNC"])


def resolve_target(config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> Target:
    for key in ("DATABASE_URL", "DATABASE_PUBLIC_URL"):
        if environ.get(key):
            return _from_url(environ[key], key)
    if environ.get("PGHOST") and environ.get("PGDATABASE"):
        return Target("", environ["PGHOST"], environ["PGDATABASE"])  # libpq reads PG* itself
    from devkit.envfile import load_stack

    return stack_target(load_stack(config).values)


def check_local(stack: Stack, target: Target, task: str, other_hint: str = "") -> None:
    """Refuse unless the data tasks' target (DATABASE_URL / PG* first) is this machine's stack:
    `task` works only on the stack's own database. `other_hint`: how to reach the other one."""
    own = stack_target(stack.values)
    if (
        not target.is_local
        or target.database != own.database
        or (target.dsn and f":{stack.pg_port}/" not in target.dsn)
    ):
        from devkit.errors import DataConflict

        raise DataConflict(
            f"{task} works only on this machine's stack, but DATABASE_URL / PG* name "
            f"{target.database or '?'} on {target.host or '(PG* variables)'}",
            "unset DATABASE_URL / DATABASE_PUBLIC_URL / PGHOST for the stack's database"
            + (f"; {other_hint}" if other_hint else ""),
        )
