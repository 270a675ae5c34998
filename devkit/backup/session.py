"""What dump, load and diff share: the connection to the app's database, the error type, the
progress protocol and the size of the blocks rows travel in."""

from __future__ import annotations

from typing import Protocol

from devkit.backup.target import Target
from devkit.errors import DevkitError

# Bytes of rows handed on at once, both ways: few large writes instead of one per row.
BLOCK = 1 << 20


class Progress(Protocol):
    """Told how much work there is (a row estimate, or None) and how it advances."""

    def start(self, total_rows: int | None) -> None: ...

    def advance(self, table: str, rows: int) -> None: ...


class BackupError(DevkitError):
    """A backup or restore could not be done; nothing was changed."""


# The kit's sessions search pg_catalog only, as pg_dump's and pg_restore's do: a function or
# operator the app's role defines (or a search_path its database sets) never stands in for a
# built-in in the kit's own queries. Every app object the kit names is schema-qualified.
PINNED = "-c search_path=pg_catalog,pg_temp"


def connect(target: Target):
    import psycopg2

    try:
        return psycopg2.connect(
            target.dsn, application_name="devkit-backup", connect_timeout=10, options=PINNED
        )
    except psycopg2.ProgrammingError:  # libpq quotes the part it cannot parse: the password
        raise BackupError(
            "the database's connection settings cannot be parsed (their value is not shown: it holds the password)",
            "check DATABASE_URL / PG* variables (or run `devkit setup` to rewrite .env.local)",
        ) from None
    except psycopg2.OperationalError as exc:
        if "not currently accepting connections" in str(exc):
            raise BackupError(
                f"database {target.database} is closed to connections: a snapshot command is "
                "running, or one was killed half-way",
                "`devkit db.snapshots` waits for a running one and puts right what a killed one "
                "left (it says what it did); then run this again",
            ) from None
        raise BackupError(
            f"cannot connect to database {target.database or '?'} on {target.host or 'localhost'}: "
            f"{str(exc).strip().splitlines()[0]}",
            "is the stack up (`devkit up`)? For a remote database check DATABASE_URL / PG* variables",
        ) from None
