"""The by-hand path: pg_dump files made by the stack's container, and plain SQL dumps."""

import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


@pytest.fixture
def table(stack):
    conn = stack.connect()
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS sqlfmt; CREATE TABLE sqlfmt (id int PRIMARY KEY, v text)")
        cur.execute("INSERT INTO sqlfmt SELECT g, 'row ' || g FROM generate_series(1, 100) g")
    yield conn
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS sqlfmt")
    conn.close()


def rows(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), md5(string_agg(v, ',' ORDER BY id)) FROM sqlfmt")
        return cur.fetchone()


def test_custom_format_backup_and_restore(stack, table, tmp_path):
    env = {"INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    made = stack.invoke("db.backup", "--format", "sql", extra_env=env)
    assert made.returncode == 0, made.stderr
    path = made.stdout.strip().splitlines()[-1]
    assert path.endswith(".dump") and Path(path).read_bytes()[:5] == b"PGDMP"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    before = rows(table)
    with table.cursor() as cur:
        cur.execute("DELETE FROM sqlfmt WHERE id > 10")
    checked = stack.invoke("db.verify", path, extra_env=env)
    assert "pg_dump custom format" in checked.stdout and "tables with data" in checked.stdout
    dry = stack.invoke("db.restore", path, "--dry-run", extra_env=env)
    assert dry.returncode == 0 and "nothing changed" in dry.stdout
    assert rows(table)[0] == 10
    done = stack.invoke("db.restore", path, "--yes", extra_env=env)
    assert done.returncode == 0, done.stderr
    assert rows(table) == before
    assert os.path.basename(path) in stack.invoke("db.list", extra_env=env).stdout


def test_plain_sql_dump_restores_in_one_transaction_or_not_at_all(stack, table, tmp_path):
    """A dump made by hand (`pg_dump > backup.sql`)."""
    values = stack.values()
    dump = tmp_path / "backup_20251016.sql"
    with dump.open("wb") as out:
        subprocess.run(
            ["docker", "exec", "-e", f"PGPASSWORD={values['PGPASSWORD']}", stack.container("postgres"),
             "pg_dump", "-h", "127.0.0.1", "-U", values["PGUSER"], "-t", "sqlfmt", values["PGDATABASE"]],
            stdout=out, check=True,
        )  # fmt: skip
    before = rows(table)
    with table.cursor() as cur:
        cur.execute("DELETE FROM sqlfmt WHERE id > 50")
    # The table still exists, so the dump's CREATE TABLE fails: nothing may change.
    failed = stack.invoke("db.restore", str(dump), "--yes")
    assert failed.returncode == 1
    assert "nothing was changed" in failed.stderr and "already exists" in failed.stderr
    assert rows(table)[0] == 50
    with table.cursor() as cur:
        cur.execute("DROP TABLE sqlfmt")
    done = stack.invoke("db.restore", str(dump), "--yes")
    assert done.returncode == 0, done.stderr
    assert rows(table) == before
