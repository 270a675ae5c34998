"""The by-hand path: pg_dump files made by the stack's container, and plain SQL dumps."""

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


class Table:
    """The test table sqlfmt, each statement on a connection of its own: a restore on the
    stack keeps a snapshot first, which ends the sessions open on the database."""

    def __init__(self, stack) -> None:
        self.stack = stack

    def execute(self, statement: str):
        conn = self.stack.connect()
        try:
            with conn, conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchone() if cur.description else None
        finally:
            conn.close()


@pytest.fixture
def table(stack):
    table = Table(stack)
    table.execute("DROP TABLE IF EXISTS sqlfmt; CREATE TABLE sqlfmt (id int PRIMARY KEY, v text)")
    table.execute("INSERT INTO sqlfmt SELECT g, 'row ' || g FROM generate_series(1, 100) g")
    yield table
    table.execute("DROP TABLE IF EXISTS sqlfmt")
    stack.drop_automatic_snapshots()


def rows(table):
    return table.execute("SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM sqlfmt")


def test_custom_format_backup_and_restore(stack, table, tmp_path):
    env = {"INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    made = stack.invoke("db.backup", "--format", "sql", extra_env=env)
    assert made.returncode == 0, made.stderr
    path = made.stdout.strip().splitlines()[-1]
    assert path.endswith(".dump") and Path(path).read_bytes()[:5] == b"PGDMP"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    before = rows(table)
    table.execute("DELETE FROM sqlfmt WHERE id > 10")
    checked = stack.invoke("db.verify", path, extra_env=env)
    assert "pg_dump custom format" in checked.stdout and "tables with data" in checked.stdout
    dry = stack.invoke("db.restore", path, "--dry-run", extra_env=env)
    assert dry.returncode == 0 and "nothing changed" in dry.stdout
    assert rows(table)[0] == 10
    done = stack.invoke("db.restore", path, "--yes", extra_env=env)
    assert done.returncode == 0, done.stderr
    assert rows(table) == before
    assert os.path.basename(path) in stack.invoke("db.list", extra_env=env).stdout
    # What the restore replaced was kept as a snapshot, and its undo puts it back.
    undo = re.search(
        r"^To undo it: devkit (db\.snapshot\.restore before-restore-\S+ --yes)$", done.stdout, re.M
    )
    assert undo, done.stdout
    assert stack.invoke(*undo[1].split()).returncode == 0
    assert rows(table)[0] == 10


def test_plain_sql_dump_restores_in_one_transaction_or_not_at_all(stack, table, tmp_path):
    """A dump made by hand (`pg_dump > backup.sql`)."""
    values = stack.values()
    dump = tmp_path / "backup_20251016.sql"
    with dump.open("wb") as out:
        subprocess.run(
            ["docker", "exec", "-e", "PGPASSWORD", stack.container("postgres"),
             "pg_dump", "-h", "127.0.0.1", "-U", values["PGUSER"], "-t", "sqlfmt", values["PGDATABASE"]],
            stdout=out, env={**os.environ, "PGPASSWORD": values["PGPASSWORD"]}, check=True,
        )  # fmt: skip
    before = rows(table)
    table.execute("DELETE FROM sqlfmt WHERE id > 50")
    # The table still exists, so the dump's CREATE TABLE fails: nothing may change.
    failed = stack.invoke("db.restore", str(dump), "--yes")
    assert failed.returncode == 1
    assert "nothing was changed" in failed.stderr and "already exists" in failed.stderr
    assert f"devkit db.restore {dump} --clean" in " ".join(failed.stderr.split())
    assert rows(table)[0] == 50
    # --clean: the database set aside, the dump loaded into an empty one; undone as it says.
    cleaned = stack.invoke("db.restore", str(dump), "--clean", "--yes")
    assert cleaned.returncode == 0, cleaned.stderr
    assert rows(table) == before
    assert table.execute("SELECT to_regclass('public.sample_users')") == (None,)
    undo = re.search(r"To undo it: devkit (db\.snapshot\.restore \S+ --yes)", cleaned.stdout)[1]
    assert stack.invoke(*undo.split()).returncode == 0
    assert rows(table)[0] == 50
    assert table.execute("SELECT to_regclass('public.sample_users')") != (None,)
    # A dump that fails in an empty database too puts the database back as it was.
    broken = tmp_path / "broken.sql"
    broken.write_bytes(dump.read_bytes() + b"SELEC broken;\n")
    failed = stack.invoke("db.restore", str(broken), "--clean", "--yes")
    assert failed.returncode == 1 and "put back the database as it was" in failed.stdout
    assert rows(table)[0] == 50
    table.execute("DROP TABLE sqlfmt")
    done = stack.invoke("db.restore", str(dump), "--yes")
    assert done.returncode == 0, done.stderr
    assert rows(table) == before


def test_a_dump_made_as_postgres_in_the_old_container_restores_owned_by_the_app(stack, tmp_path):
    """The old guide's backup: `docker compose exec -T postgres pg_dump -U postgres app_db >
    backup.sql` in a container run as `postgres:postgres`, so the dump says `ALTER TABLE …
    OWNER TO postgres`; the app's role (not a superuser) restores it and owns what it made."""
    from urllib.parse import urlsplit

    admin = stack.admin_connect()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(
            "CREATE TABLE old_orders (id serial PRIMARY KEY, item text);"
            "INSERT INTO old_orders (item) SELECT 'item ' || g FROM generate_series(1, 30) g"
        )
    dump = tmp_path / "backup_20251016.sql"
    with dump.open("wb") as out:
        subprocess.run(
            ["docker", "exec", "-e", "PGPASSWORD", stack.container("postgres"),
             "pg_dump", "-h", "127.0.0.1", "-U", "postgres", "-t", "old_orders",
             stack.values()["PGDATABASE"]],
            stdout=out, env={**os.environ, "PGPASSWORD": urlsplit(stack.admin_url()).password},
            check=True,
        )  # fmt: skip
    assert b"OWNER TO postgres;" in dump.read_bytes()
    with admin.cursor() as cur:
        cur.execute("DROP TABLE old_orders")
    admin.close()  # the restore's snapshot would end it
    try:
        done = stack.invoke("db.restore", str(dump), "--yes")
        assert done.returncode == 0, done.stderr
        conn = stack.connect()
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), max(id) FROM old_orders")
            assert cur.fetchone() == (30, 30)
            cur.execute("INSERT INTO old_orders (item) VALUES ('new') RETURNING id")  # its sequence
            assert cur.fetchone() == (31,)
            cur.execute(
                "SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class WHERE relname LIKE 'old_orders%'"
            )
            assert cur.fetchall() == [(stack.values()["PGUSER"],)]
        conn.commit()
        conn.close()
    finally:
        admin = stack.admin_connect()
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS old_orders")
        admin.close()
        stack.drop_automatic_snapshots()
