"""PostgreSQL's wal_level as the kit runs it (the postgres_wal_level setting; compose.yaml's
command): what goes with a level, and what a cluster holds that a lower level would keep from
starting.

PostgreSQL stops at start-up below the level its replication slots need (a physical slot:
replica; a logical one: logical), and at minimal with WAL archiving on (`archive_mode`, which
only `ALTER SYSTEM` can have set here). So before compose.yaml changes the level, the stack role
asks the running cluster (`.venv/bin/python -m devkit.wal_level CONTAINER LEVEL APP_USER`, over
the container's local socket as its superuser, catalog views only) and refuses, naming what
needs the higher level, before anything changes. A cluster that is not running cannot be asked:
if it then stops at start-up, setup shows the server's own reason (`dbroles`, its last FATAL
line).
"""

from __future__ import annotations

import sys

LEVELS = ("minimal", "replica", "logical")
# .env.local's key for max_wal_senders, which goes with the level.
SENDERS_KEY = "DEVKIT_PG_MAX_WAL_SENDERS"
# Where the setting is set, for a fix line.
WHERE = "(invoke.yaml; a server: devkit_postgres_wal_level in its inventory)"
# One line per need: archive_mode's value, then each slot's type and name.
NEEDS_SQL = (
    "SELECT 'archive_mode', pg_catalog.current_setting('archive_mode') UNION ALL "
    "SELECT slot_type, slot_name FROM pg_catalog.pg_replication_slots"
)


def senders(level: str) -> str:
    """max_wal_senders at LEVEL: 0 at minimal (the server refuses to start with more), else
    PostgreSQL's default."""
    return "0" if level == "minimal" else "10"


def refusal(level: str, rows: list[tuple[str, str]], container: str) -> tuple[str, str] | None:
    """(cause, fix) when the cluster in CONTAINER, whose NEEDS_SQL gave ROWS, would not start at
    LEVEL; None when it would."""
    needs, undo = [], []
    for kind, name in rows:
        if kind == "archive_mode" and name != "off":
            needs.append(("replica", f"archive_mode {name}"))
            undo.append("ALTER SYSTEM RESET archive_mode")
        elif kind in ("physical", "logical"):
            needs.append(
                (
                    "replica" if kind == "physical" else "logical",
                    f'the {kind} replication slot "{name}"',
                )
            )
            undo.append("SELECT pg_drop_replication_slot('{}')".format(name.replace("'", "''")))
    above = [i for i, (need, _) in enumerate(needs) if LEVELS.index(need) > LEVELS.index(level)]
    if not above:
        return None
    wanted = max((needs[i][0] for i in above), key=LEVELS.index)
    sql = "; ".join(undo[i] for i in above)
    return (
        f"PostgreSQL would not start at wal_level {level}: "
        f"{', '.join(needs[i][1] for i in above)} needs {wanted}",
        f"set devkit.postgres_wal_level: {wanted} {WHERE} and run again; or, if nothing uses it "
        f'any more: docker exec -u postgres {container} psql -c "{sql}"',
    )


def main(argv: list[str] | None = None) -> int:
    """CONTAINER LEVEL APP_USER: exit 1, saying why, when the running cluster would not start at
    LEVEL; 0 otherwise, also when it does not answer (setup then waits for it, and says why).
    Asked as `postgres`, else as APP_USER (the superuser of a cluster an earlier kit made)."""
    from devkit import socket_psql

    container, level, app_user = argv if argv is not None else sys.argv[1:]
    for user in ("postgres", app_user):
        done = socket_psql.run(container, user, NEEDS_SQL + ";\n")
        if done.returncode == 0:
            break
    else:
        return 0
    # Slot names are letters, digits and _: no | in a row.
    rows = [tuple(line.split("|", 1)) for line in done.stdout.splitlines() if "|" in line]
    found = refusal(level, rows, container)
    if found:
        print(f"error: {found[0]}\n  fix: {found[1]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
