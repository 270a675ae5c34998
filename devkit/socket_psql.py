"""psql in a stack's PostgreSQL container over its local socket (trusted there), as the
cluster's superuser or any role: SQL on stdin, after a search_path of built-ins only, whatever
search_path the app's role set on its database (ALTER DATABASE … SET search_path) or whichever
functions it defined. For the kit's admin work (devkit.dbroles, devkit.wal_level): no password
and no SQL in any command line."""

from __future__ import annotations

import subprocess

PINNED = "SET search_path = pg_catalog, pg_temp;\n"


def run(
    container: str, user: str, sql: str, database: str = "postgres"
) -> subprocess.CompletedProcess[str]:
    """SQL as USER in DATABASE, unaligned (`a|b` rows); psql stops at the first error."""
    return subprocess.run(
        ["docker", "exec", "-i", "-u", "postgres", container, "psql", "-X", "-q", "-At",
         "-v", "ON_ERROR_STOP=1", "-U", user, "-d", database],
        input=PINNED + sql,
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
