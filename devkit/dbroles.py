"""The database roles: the app's own and the cluster's admin.

The app connects as its own role (`PGUSER`, `app` by default): it owns its database, the schemas
and every object in them, and is no superuser, so that SQL injected into the app cannot reach
past its data (`COPY ... TO PROGRAM`, other databases, roles). The cluster's superuser is
`postgres`, the admin. The app's role is untrusted (its migrations, its dependencies and the dumps
it restores control it), so the admin only creates, alters and drops databases and roles, and
never runs what the app's role can define: everything inside the app's database (restores,
backups, the migration version) runs on the app's own login, which cannot RESET ROLE its way back
as a `SET ROLE` inside an admin session could. The app's role is granted SET on
`session_replication_role`, so that a restore loads as `pg_restore --disable-triggers` does (its
own tables' triggers and foreign keys: nothing it could not already drop as their owner).
Its password is generated once on the host and kept apart from the app's settings, in a private
file of the kit's (`admin_env_file`), never in the app's `.env.local`.

Clusters that an earlier kit made have the app's user as their bootstrap superuser (initdb's
user), which PostgreSQL 16 refuses to strip of SUPERUSER. They change over in place: a temporary
superuser renames that role to `postgres`, a new app role takes its name, password and every
object of the app. Run by the stack role (`.venv/bin/python -m devkit.dbroles` of the kit) on workstations and servers
alike, over the container's local socket (trusted there), SQL on stdin, passwords as SCRAM
verifiers only: no password in any command line, and none sent in clear.
"""

from __future__ import annotations

import argparse
import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

from devkit import socket_psql, wal_level
from devkit.admin_password import (
    ADMIN_USER,
    admin_env_file,
    keep_admin_password,
    scram_verifier,
    verifier_matches,
)
from devkit.backup.catalog import quote_ident
from devkit.envfile import read_env_file
from devkit.errors import DevkitError

_MIGRATOR = "devkit_migrate"
_SYSTEM_SCHEMA = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'"
)


class RolesError(DevkitError):
    """The database roles could not be set up."""


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Cluster:
    """psql in the stack's PostgreSQL container over its local socket, SQL on stdin."""

    def __init__(self, container: str) -> None:
        self.container = container

    def run(
        self, user: str, sql: str, database: str = "postgres"
    ) -> subprocess.CompletedProcess[str]:
        return socket_psql.run(self.container, user, sql, database)

    def query(self, user: str, sql: str, database: str = "postgres") -> list[list[str]]:
        done = self.run(user, sql, database)
        if done.returncode != 0:
            raise RolesError(
                f"PostgreSQL refused the kit's role setup: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}",
                "see `devkit logs --service postgres`; `devkit doctor` diagnoses",
            )
        return [line.split("|") for line in done.stdout.splitlines() if line]


def _superuser(cluster: _Cluster, app_user: str, timeout: float) -> str:
    """The superuser to connect as: the admin, or (a cluster an earlier kit made) the app's user.
    Waits for the server to accept connections (a container that was just started)."""
    deadline = time.monotonic() + timeout
    while True:
        # A new volume's first start runs a socket-only server for initdb's scripts, then stops
        # it: the real server is the one that listens on TCP.
        listening = subprocess.run(
            ["docker", "exec", cluster.container, "pg_isready", "-q", "-h", "127.0.0.1"],
            capture_output=True,
            check=False,
        )
        for user in (ADMIN_USER, app_user) if listening.returncode == 0 else ():
            done = cluster.run(user, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if done.returncode == 0 and done.stdout.strip() == "t":
                return user
        if time.monotonic() >= deadline:
            if listening.returncode != 0 and (fatal := _stopped_because(cluster.container)):
                raise RolesError(
                    f"PostgreSQL in {cluster.container} stops as it starts: {fatal}",
                    f"set devkit.postgres_wal_level to the level it names {wal_level.WHERE} "
                    "and run again"
                    if "wal_level" in fatal
                    else "see `devkit logs --service postgres`; `devkit doctor` diagnoses",
                )
            said = (done.stderr or done.stdout) if listening.returncode == 0 else "not listening"
            raise RolesError(
                f"no superuser of the cluster in {cluster.container} answered in {timeout:g}s "
                f"({said.strip()[:200]})",
                "see `devkit logs --service postgres`; `devkit doctor` diagnoses",
            )
        time.sleep(0.5)


def _stopped_because(container: str) -> str:
    """The server's last FATAL message in the container's recent log when the container keeps
    stopping (a setting the server refuses ends it at start-up: a replication slot above
    wal_level, say); "" when it runs, or has no such line."""
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Running}} {{.State.Restarting}}", container],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if state != ["false", "false"] and state != ["true", "true"]:
        return ""
    logs = subprocess.run(
        ["docker", "logs", "--tail", "50", container], capture_output=True, text=True, check=False
    )
    fatal = [line for line in (logs.stdout + logs.stderr).splitlines() if "FATAL:  " in line]
    return fatal[-1].split("FATAL:  ", 1)[1].strip()[:300] if fatal else ""


def _own_everything(app: str, old_owner: str) -> str:
    """SQL (run in the app's database) giving the app every object of its schemas that
    `old_owner` owns: schemas, tables, views, sequences not tied to a column, functions, types."""
    to = quote_ident(app)
    return f"""
DO $devkit$
DECLARE r record;
BEGIN
  FOR r IN SELECT n.nspname FROM pg_namespace n
           WHERE n.nspowner = {_literal(old_owner)}::regrole AND {_SYSTEM_SCHEMA} LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO {to}', r.nspname);
  END LOOP;
  FOR r IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relowner = {_literal(old_owner)}::regrole AND {_SYSTEM_SCHEMA}
             AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype IN ('a', 'i', 'e')) LOOP
    EXECUTE format('ALTER %s %s OWNER TO {to}',
      CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                     WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, r.name);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS name, p.prokind FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE p.proowner = {_literal(old_owner)}::regrole AND {_SYSTEM_SCHEMA}
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                             AND d.objid = p.oid AND d.deptype = 'e') LOOP
    EXECUTE format('ALTER %s %s OWNER TO {to}',
      CASE r.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, r.name);
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS name, t.typtype FROM pg_type t
           JOIN pg_namespace n ON n.oid = t.typnamespace
           LEFT JOIN pg_class c ON c.oid = t.typrelid
           WHERE t.typowner = {_literal(old_owner)}::regrole AND {_SYSTEM_SCHEMA}
             AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                             AND d.objid = t.oid AND d.deptype = 'e') LOOP
    EXECUTE format('ALTER %s %s OWNER TO {to}',
      CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.name);
  END LOOP;
END
$devkit$;
"""


def ensure_roles(
    container: str,
    app_user: str,
    app_password: str,
    database: str,
    admin_password: str,
    timeout: float = 90,
) -> list[str]:
    """Bring the cluster to: `postgres` the superuser with `admin_password`; `app_user` a login
    role that is no superuser, with `app_password`, owning `database`, its schemas and their
    objects. Returns what was changed (nothing on a second run)."""
    if app_user == ADMIN_USER:
        raise RolesError(
            f"the app's database user may not be {ADMIN_USER!r}, the cluster's admin",
            "set devkit.postgres_user to another name (the default is app)",
        )
    cluster = _Cluster(container)
    su = _superuser(cluster, app_user, timeout)
    changes: list[str] = []
    (bootstrap,) = cluster.query(su, "SELECT rolname FROM pg_roles WHERE oid = 10")[0]
    if bootstrap == app_user:
        # An earlier kit's cluster: the app's user is the bootstrap superuser.
        cluster.query(
            su, f"DROP ROLE IF EXISTS {_MIGRATOR}; CREATE ROLE {_MIGRATOR} SUPERUSER LOGIN"
        )
        cluster.query(
            _MIGRATOR,
            f"ALTER ROLE {quote_ident(app_user)} RENAME TO {ADMIN_USER};"
            f"CREATE ROLE {quote_ident(app_user)} LOGIN;",
        )
        cluster.query(ADMIN_USER, f"DROP ROLE {_MIGRATOR}")
        changes.append(
            f"the cluster superuser {app_user} became {ADMIN_USER}, and {app_user} is now the app role"
        )
        su = ADMIN_USER
    elif bootstrap != ADMIN_USER:
        raise RolesError(
            f"the cluster's superuser is {bootstrap!r}, neither {ADMIN_USER!r} nor the app's {app_user!r}",
            "this volume was not made by the kit; point the kit at its own (see `devkit doctor`)",
        )
    roles = {
        name: (super_, login, password or None)
        for name, super_, login, password in cluster.query(
            su,
            "SELECT rolname, rolsuper, rolcanlogin, coalesce(rolpassword, '') FROM pg_authid "
            f"WHERE rolname IN ({_literal(ADMIN_USER)}, {_literal(app_user)})",
        )
    }
    statements = []
    if not verifier_matches(roles[ADMIN_USER][2], admin_password):
        statements.append(
            f"ALTER ROLE {ADMIN_USER} PASSWORD {_literal(scram_verifier(admin_password))}"
        )
        changes.append(f"set the password of {ADMIN_USER} (kept apart from the app settings)")
    created = app_user not in roles
    if created:
        statements.append(f"CREATE ROLE {quote_ident(app_user)} LOGIN")
        changes.append(f"created the app role {app_user}")
        roles[app_user] = ("f", "t", None)
    if roles[app_user][:2] != ("f", "t"):
        statements.append(
            f"ALTER ROLE {quote_ident(app_user)} NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS LOGIN"
        )
        changes.append(f"{app_user} is no superuser")
    if not verifier_matches(roles[app_user][2], app_password):
        statements.append(
            f"ALTER ROLE {quote_ident(app_user)} PASSWORD {_literal(scram_verifier(app_password))}"
        )
        changes.append(f"set the password of {app_user} to the one in .env.local")
    found = cluster.query(
        su, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = {_literal(database)}"
    )
    if not found:
        raise RolesError(
            f"the cluster has no database {database!r}",
            "this volume was made for other settings; see `devkit doctor`",
        )
    if found[0][0] != app_user:
        statements.append(
            f"ALTER DATABASE {quote_ident(database)} OWNER TO {quote_ident(app_user)}"
        )
        changes.append(f"{app_user} owns the database {database}")
    if created or cluster.query(
        su,
        f"SELECT has_parameter_privilege({_literal(app_user)}, 'session_replication_role', 'SET')",
    ) != [["t"]]:
        statements.append(
            f"GRANT SET ON PARAMETER session_replication_role TO {quote_ident(app_user)}"
        )
        changes.append(f"{app_user} may load a restore without its tables' triggers")
    if statements:
        cluster.query(su, ";\n".join(statements) + ";\n")
    # Objects of the app's schemas that another role owns (pg_database_owner, the owner of
    # `public` in a new database, stands for the app); extension members and sequences of a
    # column follow their extension or table.
    owners = cluster.query(
        su,
        "SELECT DISTINCT pg_get_userbyid(owner) FROM ("
        f" SELECT n.nspowner AS owner FROM pg_namespace n WHERE {_SYSTEM_SCHEMA}"
        " UNION ALL SELECT c.relowner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        f" WHERE {_SYSTEM_SCHEMA} AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
        " AND d.objid = c.oid AND d.deptype IN ('a', 'i', 'e'))"
        f") x WHERE owner NOT IN ({_literal(app_user)}::regrole, 'pg_database_owner'::regrole)",
        database,
    )
    for (owner,) in owners:
        cluster.query(su, _own_everything(app_user, owner), database)
    if owners:
        changes.append(f"{app_user} owns every schema and object of {database}")
    return changes


def apply_roles(
    project: str,
    app_user: str,
    app_password: str,
    database: str,
    owner: str,
    timeout: float,
    state: Path | None = None,
) -> list[str]:
    """ensure_roles for a stack, with the admin password kept for `owner` (made when missing;
    in STATE, the owner's kit state directory, when given); what changed, the admin file first
    when it is new."""
    path = admin_env_file(project, Path(pwd.getpwnam(owner).pw_dir), state)
    admin_password, created = keep_admin_password(path, owner)
    changes = ensure_roles(
        f"{project}-postgres-1", app_user, app_password, database, admin_password, timeout
    )
    return ([f"kept the admin password in {path} (0600)"] if created else []) + changes


def ensure_stack_roles(stack) -> list[str]:
    """apply_roles for a stack (devkit.envfile.Stack) of the user running the kit: after its
    volume was made anew (db.reset), as setup does."""
    return apply_roles(
        stack.project,
        stack.pg_user,
        stack.pg_password,
        stack.pg_database,
        pwd.getpwuid(os.getuid()).pw_name,
        stack.ready_timeout,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.dbroles", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--env-file", required=True, type=Path, help="the app's .env.local")
    parser.add_argument("--owner", required=True, help="who runs the kit (owns the admin file)")
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument(
        "--state-dir",
        type=lambda text: Path(text) if text else None,
        help="the owner's kit state directory (devkit.paths.state_dir); empty: the owner's default",
    )
    args = parser.parse_args(argv)
    values = read_env_file(args.env_file)
    try:
        changes = apply_roles(
            values["DEVKIT_PROJECT_NAME"],
            values["PGUSER"],
            values["PGPASSWORD"],
            values["PGDATABASE"],
            args.owner,
            args.timeout,
            args.state_dir,
        )
    except KeyError as exc:
        print(
            f"error: {args.env_file} has no {exc.args[0]}\n  fix: run `devkit setup`",
            file=sys.stderr,
        )
        return 1
    except DevkitError as exc:
        print(exc.render(), file=sys.stderr)
        return 1
    for change in changes:
        print(f"changed - {change}")
    if not changes:
        print("ok - the app role and the admin role are as they should be")
    return 0


if __name__ == "__main__":
    sys.exit(main())
