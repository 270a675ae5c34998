"""The superuser boundary (issue 34): the app's database role is untrusted (its migrations, its
dependencies and the dumps it restores control it). Nothing it defines runs as the cluster's
admin, no dump runs a command, no metadata names a file the kit deletes, and a copied or
another user's app directory never acts on the original's data. Each test reproduces one
finding of the audit, as the app's role (or another Unix user) would, on the real stack."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg2
import pytest
import redis

from phrases import says

pytestmark = pytest.mark.docker

KIT_ROOT = Path(__file__).resolve().parents[2]


def as_app(stack, statement: str, *args):
    conn = stack.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(statement, args or None)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def as_admin(stack, statement: str, database: str = "postgres"):
    conn = stack.admin_connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def app_is_superuser(stack) -> bool:
    return as_admin(stack, "SELECT rolsuper FROM pg_roles WHERE rolname = 'app'")[0][0]


def container_file(stack, path: str) -> bool:
    return (
        subprocess.run(
            ["docker", "exec", stack.container("postgres"), "test", "-e", path], check=False
        ).returncode
        == 0
    )


# What the app's role plants: a function that records who runs it, tries to make the app a
# superuser (also after RESET ROLE, which would leave a SET ROLE sandbox) and to run a program.
ESCALATE = r"""
CREATE TABLE IF NOT EXISTS public.ran_as (who text, via text);
CREATE OR REPLACE FUNCTION public.escalate(via text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
  INSERT INTO public.ran_as VALUES (current_user, via);
  BEGIN
    RESET ROLE;
    ALTER ROLE app SUPERUSER;
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  BEGIN
    EXECUTE format('COPY (SELECT %L) TO PROGRAM %L', 'escalated as ' || current_user,
                   'id >> /tmp/escalated');
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
END
$f$;
CREATE OR REPLACE FUNCTION public.escalate_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM public.escalate(TG_NAME);
  RETURN NEW;
END
$f$;
"""


@pytest.fixture
def planted(stack):
    """The app's role's traps, removed after the test (and the app made no superuser again,
    should a test fail that way)."""
    as_app(stack, ESCALATE)
    yield
    stack.drop_automatic_snapshots()
    as_app(
        stack,
        "DROP TABLE IF EXISTS public.events, public.ran_as CASCADE;"
        "DROP FUNCTION IF EXISTS public.escalate_trigger(), public.escalate(text) CASCADE",
    )
    as_admin(stack, "ALTER ROLE app NOSUPERUSER")
    subprocess.run(
        ["docker", "exec", stack.container("postgres"), "rm", "-f", "/tmp/escalated"], check=False
    )


def ran_as(stack) -> set[tuple[str, str]]:
    return {tuple(row) for row in as_app(stack, "SELECT who, via FROM public.ran_as")}


@pytest.mark.parametrize("always", [False, True], ids=["ordinary", "enable-always"])
def test_a_restore_runs_none_of_the_apps_triggers_as_the_admin(stack, planted, tmp_path, always):
    """H1: a BEFORE TRUNCATE trigger (the kit's TRUNCATE ran as the admin, before triggers were
    turned off) and a row trigger, ordinary (off during the load, as pg_restore
    --disable-triggers) or ENABLE ALWAYS (fires whatever session_replication_role says: as the
    app, on the app's own login, granted SET on session_replication_role)."""
    as_app(
        stack,
        "CREATE TABLE public.events (id int PRIMARY KEY, v text);"
        "INSERT INTO public.events SELECT g, 'e' || g FROM generate_series(1, 50) g",
    )
    env = {"INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    made = stack.invoke("db.backup", extra_env=env)
    assert made.returncode == 0, made.stderr
    as_app(
        stack,
        "CREATE TRIGGER on_truncate BEFORE TRUNCATE ON public.events "
        "FOR EACH STATEMENT EXECUTE FUNCTION public.escalate_trigger();"
        "CREATE TRIGGER on_insert BEFORE INSERT ON public.events "
        "FOR EACH ROW EXECUTE FUNCTION public.escalate_trigger();"
        + ("ALTER TABLE public.events ENABLE ALWAYS TRIGGER on_insert;" if always else "")
        + "DELETE FROM public.events WHERE id > 10; DELETE FROM public.ran_as",
    )

    done = stack.invoke("db.restore", made.stdout.strip().splitlines()[-1], "--yes", extra_env=env)

    assert done.returncode == 0, done.stderr
    assert not app_is_superuser(stack)
    assert not container_file(stack, "/tmp/escalated")
    assert ran_as(stack) == ({("app", "on_insert")} if always else set())
    assert as_app(stack, "SELECT count(*) FROM public.events") == [(50,)]
    granted = "SELECT has_parameter_privilege('app', 'session_replication_role', 'SET')"
    assert as_admin(stack, granted) == [(True,)]


def test_the_admin_never_reads_a_migration_table_the_app_turned_into_a_view(stack, planted):
    """H2: `alembic_version` replaced by a view over the app's function; every snapshot,
    migrate, reset and restore read it as the admin."""
    (revision,) = as_app(stack, "SELECT version_num FROM public.alembic_version")[0]
    as_app(
        stack,
        "CREATE FUNCTION public.version_trap() RETURNS SETOF varchar LANGUAGE plpgsql AS $f$"
        " BEGIN PERFORM public.escalate('view'); RETURN NEXT %s::varchar; END $f$;"
        "ALTER TABLE public.alembic_version RENAME TO alembic_version_real;"
        "CREATE VIEW public.alembic_version AS SELECT version_num FROM public.version_trap() "
        "AS t(version_num)",
        revision,
    )
    try:
        taken = stack.invoke("db.snapshot", "--name", "h2")
        assert taken.returncode != 0 and "Traceback" not in taken.stderr
        assert "is not a plain table" in taken.stderr, taken.stderr
        assert "fix:" in taken.stderr
        assert not app_is_superuser(stack)
        assert not container_file(stack, "/tmp/escalated")
        assert "postgres" not in {who for who, _ in ran_as(stack)}
        assert not re.search(r"^h2\s", stack.invoke("db.snapshots").stdout, re.M)
    finally:
        stack.invoke("db.snapshot.drop", "h2", "--yes")
        as_app(
            stack,
            "DROP VIEW public.alembic_version; DROP FUNCTION public.version_trap();"
            "ALTER TABLE public.alembic_version_real RENAME TO alembic_version",
        )


# A plain dump as pg_dump writes one, with what psql alone would run: a shell command, an
# output file into the server's data, and one after a statement on the same line.
HOSTILE_DUMP = """--
-- PostgreSQL database dump
--
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE TABLE public.dumped (id integer NOT NULL, v text);
{meta}
COPY public.dumped (id, v) FROM stdin;
1\tone \\! not a command: data
\\.
--
-- PostgreSQL database dump complete
--
"""


@pytest.mark.parametrize(
    "meta, line",
    [
        ("\\! id > /tmp/escalated", 7),
        ("\\o /var/lib/postgresql/data/escalated", 7),
        ("SELECT 1; \\! id > /tmp/escalated", 7),
        ("\\copy public.dumped to program 'id > /tmp/escalated'", 7),
        ("\\set x `id > /tmp/escalated`", 7),
    ],
)
def test_a_plain_dump_runs_no_meta_command(stack, tmp_path, meta, line):
    """H3: `\\!` and `\\o` in a plain dump ran as root inside the container."""
    dump = tmp_path / "hostile.sql"
    dump.write_text(HOSTILE_DUMP.format(meta=meta))
    try:
        for args in (("--dry-run",), ("--yes",)):
            done = stack.invoke("db.restore", str(dump), *args)
            assert done.returncode != 0 and "Traceback" not in done.stderr
            assert f"hostile.sql line {line}:" in done.stderr, done.stderr
            assert "psql meta-command" in done.stderr and "fix:" in done.stderr
        assert not container_file(stack, "/tmp/escalated")
        assert not container_file(stack, "/var/lib/postgresql/data/escalated")
        assert as_app(stack, "SELECT to_regclass('public.dumped')") == [(None,)]
    finally:
        stack.drop_automatic_snapshots()


def test_a_plain_dump_loads_without_psql_its_guards_and_data_kept(stack, tmp_path):
    """What pg_dump 16.10 and later write (`\\restrict KEY` … `\\unrestrict KEY`, CVE-2025-8714)
    restores; a backslash in COPY data or in a function's dollar-quoted body is data; the
    server's error names the dump's line."""
    dump = tmp_path / "guarded.sql"
    dump.write_text(
        "--\n-- PostgreSQL database dump\n--\n\\restrict abcDEF123\n"
        "SET standard_conforming_strings = on;\n"
        "CREATE TABLE public.guarded (id integer NOT NULL, v text);\n"
        "CREATE FUNCTION public.guarded_f() RETURNS text LANGUAGE sql AS $$\nSELECT '\n"
        "\\! not a command inside a dollar quote\n'::text\n$$;\n"
        "COMMENT ON TABLE public.guarded IS 'a \\ backslash';\n"
        "COPY public.guarded (id, v) FROM stdin;\n1\ta\\\\b\n2\t\\N\n\\.\n"
        "\\unrestrict abcDEF123\n--\n-- PostgreSQL database dump complete\n--\n"
    )
    try:
        done = stack.invoke("db.restore", str(dump), "--yes")
        assert done.returncode == 0, done.stderr
        assert as_app(stack, "SELECT id, v FROM public.guarded ORDER BY id") == [
            (1, "a\\b"),
            (2, None),
        ]
        assert as_app(stack, "SELECT public.guarded_f()") == [
            ("\n\\! not a command inside a dollar quote\n",)
        ]
        broken = tmp_path / "broken.sql"
        broken.write_text(
            "--\n-- PostgreSQL database dump\n--\nCREATE TABLE public.guarded2 (id int);\n"
            "SELECT 1;\nSELEC broken;\n"
        )
        failed = stack.invoke("db.restore", str(broken), "--yes")
        assert failed.returncode != 0 and "broken.sql failed at line 6" in failed.stderr
        assert as_app(stack, "SELECT to_regclass('public.guarded2')") == [(None,)]
    finally:
        as_app(
            stack, "DROP TABLE IF EXISTS public.guarded; DROP FUNCTION IF EXISTS public.guarded_f()"
        )
        stack.drop_automatic_snapshots()


def test_pg_dump_tools_run_as_nobody_in_the_container(stack):
    """pg_dump and pg_restore read and write what they are handed as `nobody` in the container
    (the server's files belong to postgres, and its local socket trusts whoever reaches it);
    test_backup_sql.py runs both for real through these command lines."""
    from devkit.backup import pgdump
    from devkit.envfile import read_env_file, stack_of

    target = stack_of(stack.env_file, read_env_file(stack.env_file))
    for tool in ("pg_dump", "pg_restore"):
        argv = pgdump._exec(target, tool)
        assert argv[:2] == ["docker", "exec"] and argv[argv.index("-u") + 1] == "nobody"
    whoami = subprocess.run(
        [*pgdump._exec(target, "id", connect=False)[:-1], "id", "-un"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert whoami.stdout.strip() == "nobody"


def test_a_snapshots_comment_names_no_file_the_kit_deletes(stack, tmp_path):
    """H5: the undo database of a restore was the app's; the app rewrote its comment to name a
    file of the user's as its Redis copy, and the next pruning deleted that file."""
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file")
    env = {"INVOKE_DEVKIT_SNAPSHOT_KEEP": "1"}
    stack.drop_automatic_snapshots()
    try:
        assert stack.invoke("db.snapshot", "--name", "h5").returncode == 0
        restored = stack.invoke("db.snapshot.restore", "h5", "--yes", extra_env=env)
        assert restored.returncode == 0, restored.stderr
        undo = re.search(r"kept as snapshot (undo-\S+)", restored.stdout)[1]
        database = f"app_db.snapshot.{undo}"
        owners = dict(
            as_admin(
                stack,
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
                "WHERE datname LIKE 'app\\_db.snapshot.%'",
            )
        )
        assert set(owners.values()) == {"postgres"}, owners
        forged = json.dumps(
            {"devkit_snapshot": {"taken": "2000-01-01T00:00:00", "redis": str(victim), "auto": "x"}}
        )
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            as_app(stack, f'COMMENT ON DATABASE "{database}" IS %s', forged)
        # A snapshot an earlier kit left owned by the app, its comment rewritten by the app.
        as_admin(stack, f'ALTER DATABASE "{database}" OWNER TO app')
        as_app(stack, f'COMMENT ON DATABASE "{database}" IS %s', forged)
        again = stack.invoke("db.snapshot", "--name", "h5-2", extra_env=env)
        assert again.returncode == 0, again.stderr
        pruned = stack.invoke("db.snapshot.restore", "h5-2", "--yes", extra_env=env)
        assert pruned.returncode == 0, pruned.stderr
        assert victim.read_text() == "the user's file"
        assert as_admin(
            stack, f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{database}'"
        ) in ([], [("postgres",)])
    finally:
        for name in ("h5", "h5-2"):
            stack.invoke("db.snapshot.drop", name, "--yes")
        stack.drop_automatic_snapshots()


def test_a_planted_link_at_the_redis_copy_is_not_followed(stack, tmp_path):
    """A symlink left where the snapshot's Redis keys are written first (`.NAME.keys.gz.partial`)
    is neither followed (the file it points at keeps its bytes) nor deleted through."""
    from devkit.envfile import read_env_file, stack_of
    from devkit.snapshot_catalog import redis_copy

    target = stack_of(stack.env_file, read_env_file(stack.env_file))
    path = redis_copy(target, "linked")
    path.parent.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file")
    partial = path.with_name(f".{path.name}.partial")
    partial.symlink_to(victim)
    try:
        taken = stack.invoke("db.snapshot", "--name", "linked")
        assert taken.returncode != 0 and "Traceback" not in taken.stderr
        assert f"cannot write {partial}" in taken.stderr, taken.stderr
        assert victim.read_text() == "the user's file"
        assert partial.is_symlink()
    finally:
        partial.unlink(missing_ok=True)
        stack.invoke("db.snapshot.drop", "linked", "--yes")


def test_a_copied_app_directory_never_acts_on_the_originals_data(stack, tmp_path, run_devkit):
    """M2: `cp -a a1 a1copy; cd a1copy; devkit redis.flush --yes` deleted a1's keys."""
    copy = tmp_path / "copy"
    shutil.copytree(stack.app_dir, copy, symlinks=True)
    keys = redis.Redis.from_url(stack.values()["REDIS_URL"])
    keys.set("boundary:kept", "a1's")
    try:
        for args in (("redis.flush", "--yes"), ("status",), ("db.psql", "-c", "SELECT 1"), ("up",)):
            done = run_devkit(*args, cwd=copy)
            assert done.returncode != 0, (args, done.stdout)
            assert "Traceback" not in done.stderr
            says(done.stderr, f"{stack.app_dir},", "still there", "stack of its own")
        assert keys.get("boundary:kept") == b"a1's"
        # The original's own tasks are unaffected.
        assert run_devkit("status", cwd=stack.app_dir).returncode == 0
    finally:
        keys.delete("boundary:kept")


def as_user(user: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The `devkit` command run by USER (no root): the kit's modules and its virtualenv's
    packages through the system's python3 (the virtualenv's own interpreter may sit in root's
    home, which another user cannot enter)."""
    import sysconfig

    python = "/usr/bin/python3"
    probe = subprocess.run(
        [python, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == str(tuple(os.sys.version_info[:2])), "same Python as the kit"
    packages = sysconfig.get_paths()["purelib"]
    return subprocess.run(
        [shutil.which("runuser"), "-u", user, "--", python, "-m", "devkit.cli", *args],
        cwd=cwd,
        env={
            "HOME": f"/home/{user}", "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8", "PYTHONPATH": f"{KIT_ROOT}:{packages}",
        },
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


@pytest.fixture
def other_user():
    """A Unix user in the docker group (as a WSL developer is), removed after the test."""
    user = "devkit-boundary"
    subprocess.run(["useradd", "--create-home", user], capture_output=True, check=False)
    subprocess.run(["usermod", "-aG", "docker", user], check=True)
    yield user
    subprocess.run(["userdel", "-r", user], capture_output=True, check=False)


@pytest.mark.machine
def test_another_users_app_is_not_taken_over_by_a_copy_of_its_env_file(stack, other_user):
    """M1: user B copied user A's .env.local into a directory of theirs; setup answered "moved
    from /home/A/…: its data is kept" (A's directory, unreadable to B, counted as gone) and B
    read A's tables. Here A is root (the suite's stack, in root's private temporary directory),
    B a user in the docker group."""
    app = Path(f"/home/{other_user}") / "stolen"
    app.mkdir(exist_ok=True)
    shutil.copy(stack.env_file, app / ".env.local")
    subprocess.run(["chown", "-R", f"{other_user}:{other_user}", str(app)], check=True)
    original = stack.app_dir

    done = as_user(other_user, "setup", "--no-vscode", "--no-docker-install", cwd=app)

    assert done.returncode != 0, done.stdout[-2000:]
    assert "Traceback" not in done.stderr, done.stderr
    assert "moved from" not in done.stdout
    says(done.stderr, "already holds", f"{original},", f"not of {app}")
    assert read_labels(stack.project) == str(original)
    # Its everyday tasks are refused too: the original cannot be shown to be gone.
    status = as_user(other_user, "status", cwd=app)
    assert status.returncode != 0 and "Traceback" not in status.stderr
    assert f"was written for the app in {original}" in " ".join(status.stderr.split())


def read_labels(project: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "--format", '{{index .Config.Labels "io.devkit.app-dir"}}',
         f"{project}-postgres-1"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


# Lines where a backslash may or may not start a psql meta-command, by psql's own lexer
# (psqlscan.l): in strings, E'' strings, quoted identifiers, dollar quotes (also tagged and
# after an identifier), nested comments, line comments.
LEXER_CASES = [
    "SELECT 1; \\echo META-SEEN",
    "SELECT 'a\\echo META-SEEN';",
    "SELECT E'a\\' \\echo META-SEEN';",
    "SELECT E'\\\\' \\echo META-SEEN",
    "SELECT e'\\''; \\echo META-SEEN",
    "SELECT $$ \\echo META-SEEN $$;",
    "SELECT $tag$ $$ \\echo META-SEEN $tag$;",
    "SELECT $$\n\\echo META-SEEN\n$$;",
    "/* outer /* inner */ \\echo META-SEEN */ SELECT 1;",
    "/* one */ \\echo META-SEEN",
    "SELECT 1 -- \\echo META-SEEN",
    'SELECT "a\\echo META-SEEN";',
    "SELECT a$b$ \\echo META-SEEN",
    "SELECT foo$$ \\echo META-SEEN $$",
    "SELECT 'it''s' \\echo META-SEEN",
    "SELECT 'it''s \\echo META-SEEN'",
    "SELECT $1 \\echo META-SEEN",
    "SELECT U&'d\\0061t' \\echo META-SEEN",
    "SELECT 'a'\n'b \\echo META-SEEN'",
    "SELECT 'open\n\\echo META-SEEN\n';",
]


@pytest.mark.parametrize("script", LEXER_CASES)
def test_the_meta_command_check_agrees_with_psql_itself(stack, script):
    """The kit's check (pgdump.plain_parts) refuses exactly the scripts where the real psql of
    the stack's container runs a meta-command (\\echo here, harmless)."""
    from devkit.backup.pgdump import DumpError, plain_parts

    lines = (script + "\n").encode().splitlines(keepends=True)
    try:
        list(plain_parts(lines, "case.sql"))
        refused = False
    except DumpError:
        refused = True
    psql = subprocess.run(
        ["docker", "exec", "-i", "-u", "nobody", stack.container("postgres"),
         "psql", "-X", "-q", "-At", "-U", "app", "-d", "app_db"],
        input="SET standard_conforming_strings = on;\n" + script + "\n;\n",
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    # \echo prints its words at the start of a line; a row (unaligned) never starts so here.
    ran = re.search(r"^META-SEEN", psql.stdout, re.M) is not None
    assert refused == ran, (script, psql.stdout, psql.stderr)


def test_every_destructive_question_names_the_app_and_its_project(stack):
    """`app_db` is every app's database: a question naming only it does not say which app's
    data goes. Each is answered "n" on a terminal: nothing changes."""
    stack.invoke("db.snapshot", "--name", "asked")
    try:
        for args in (
            ("db.snapshot.drop", "asked"),
            ("db.snapshot.restore", "asked"),
            ("db.reset",),
            ("redis.flush",),
        ):
            shown, code = stack.on_terminal(*args, inputs=(b"n\r",))
            says(shown, f"{stack.app_dir} (project {stack.project})", "nothing changed")
            assert code != 0, shown
        assert re.search(r"^asked\s", stack.invoke("db.snapshots").stdout, re.M)
    finally:
        stack.invoke("db.snapshot.drop", "asked", "--yes")


def test_a_database_left_closed_is_named_with_the_repair(stack, tmp_path):
    """A snapshot command killed with -9 leaves the app's database closed to connections;
    db.backup and db.psql said "is the stack up?" (it is), now they name the repair."""
    as_admin(stack, 'ALTER DATABASE "app_db" WITH ALLOW_CONNECTIONS false')
    try:
        for args in (("db.backup", "--output-dir", str(tmp_path)), ("db.psql", "-c", "SELECT 1")):
            done = stack.invoke(*args)
            assert done.returncode != 0 and "Traceback" not in done.stderr
            assert "is closed to connections" in done.stderr, done.stderr
            assert "devkit db.snapshots" in done.stderr
        repaired = stack.invoke("db.snapshots")
        assert repaired.returncode == 0 and "open again" in repaired.stdout, repaired.stdout
    finally:
        as_admin(stack, 'ALTER DATABASE "app_db" WITH ALLOW_CONNECTIONS true')


def test_a_broken_or_misspelt_config_file_is_one_line(stack, tmp_path, run_devkit):
    """~/.invoke.yaml (Invoke reads it as the kit's own) that is not YAML was a PyYAML
    traceback; a misspelt setting was ignored, its default used."""
    home = tmp_path / "home"
    home.mkdir()
    for text, said in (
        ("devkit:\n  postgres_port: [5433\n", "is not valid YAML"),
        ("devkit:\n  snapshot_kepp: 3\n", "did you mean devkit.snapshot_keep?"),
        ("devkit:\n  snapshot_keep: many\n", "bad setting snapshot_keep='many'"),
    ):
        (home / ".invoke.yaml").write_text(text)
        done = run_devkit("db.snapshots", cwd=stack.app_dir, env={"HOME": str(home)})
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert said in done.stderr and "fix:" in done.stderr, done.stderr
