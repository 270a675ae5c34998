"""What dump, load and diff share: the connection to the app's database, the error type, the
progress protocol and the size of the blocks rows travel in."""

from __future__ import annotations

from typing import Protocol

from devkit.backup.target import Target
from devkit.errors import DevkitError

# Bytes of rows handed on at once: few large writes instead of one per row (COPY TO's rows into
# the file; a restore reads the file in blocks of its own, devkit/backup/fileformat.py).
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


def _direct(target: Target) -> dict[str, str | int]:
    """The container's own address for the stack's published port (devkit/engine_address.py),
    as connection parameters that override the DSN's host and port; {} when there is none."""
    from urllib.parse import urlsplit

    from devkit.engine_address import container_address

    if not target.is_local or not target.dsn:
        return {}
    try:
        port = urlsplit(target.dsn).port or 5432
    except ValueError:
        return {}
    found = container_address(port)
    return {"host": found[0], "port": found[1]} if found else {}


def connect(target: Target, bulk: bool = False, rows_in: bool = False):
    """A session on TARGET. BULK (backups, restores, pulls: the rows travel): to a local stack,
    straight to its container's address when this machine can (no docker-proxy in between).
    ROWS_IN (a restore's transaction): a psycopg 3 session, whose Copy.write_row formats rows
    for COPY FROM in C; its cursors bind parameters on the client, as psycopg2's do."""
    if rows_in:
        import psycopg as driver

        # The file's COPY text is UTF-8, as the backup's session printed it (codec.EXACT_OUTPUT).
        extra = {"cursor_factory": driver.ClientCursor, "client_encoding": "UTF8"}
    else:
        import psycopg2 as driver

        extra = {}

    def session(timeout: int, **where):
        return driver.connect(
            target.dsn, application_name="devkit-backup", connect_timeout=timeout, options=PINNED,
            **extra, **where,
        )  # fmt: skip

    if bulk and (direct := _direct(target)):
        try:
            return session(2, **direct)
        except driver.OperationalError:
            pass  # the published port below, and its error if it fails too
    try:
        return session(10)
    except driver.ProgrammingError:  # libpq quotes the part it cannot parse: the password
        raise BackupError(
            "the database's connection settings cannot be parsed (their value is not shown: it holds the password)",
            "check DATABASE_URL / PG* variables (or run `devkit setup` to rewrite .env.local)",
        ) from None
    except driver.OperationalError as exc:
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
