"""Backups on the real stack: exact round trips, snapshot, integrity, all-or-nothing restore."""

import gzip
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest
from history import kit_at

from devkit.backup.dump import create_backup
from devkit.backup.fileformat import CorruptBackup
from devkit.backup.load import restore_backup
from devkit.backup.reader import verify
from devkit.backup.session import BackupError
from devkit.backup.target import resolve_target
from devkit.paths import KIT_ROOT

from phrases import line_with

INVOKE = str(Path(sys.executable).with_name("invoke"))


def kit_files(directory):
    """What a directory of backups holds, but the .gitignore that keeps it out of git."""
    return [path for path in directory.iterdir() if path.name != ".gitignore"]


pytestmark = pytest.mark.docker

SCHEMA = r"""
DROP SCHEMA IF EXISTS app2 CASCADE; DROP TABLE IF EXISTS child, parent, alembic_version CASCADE;
DROP TYPE IF EXISTS mood;
CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
INSERT INTO alembic_version VALUES ('0aa2828fc065');
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE parent (
  id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, n numeric(30,10), f float8, r real, ts timestamptz,
  tsn timestamp, d date, b bytea, j jsonb, js json, a int[], ta text[], u uuid, iv interval, m mood, t text,
  ok boolean, g int GENERATED ALWAYS AS (id * 2) STORED);
CREATE TABLE child (id serial PRIMARY KEY, parent_id int NOT NULL REFERENCES parent(id), "select" text);
CREATE SCHEMA app2;
CREATE TABLE app2."Odd ""Na"" me" ("Weird Col" text, "x,y" int, self_ref int);
INSERT INTO parent (n, f, r, ts, tsn, d, b, j, js, a, ta, u, iv, m, t, ok) VALUES
 (12345678901234567890.0123456789, 'NaN', 'Infinity', 'infinity', '-infinity', '2025-02-28', '\x00ff00',
  'null', '{"k":"ü\\"}', '{1,NULL,2}', '{"a,b",NULL,"c\"d"}', gen_random_uuid(), '1 day 02:03:04.5', 'happy',
  E'tab\there\nnl \\ back \u0001', true),
 (-1.5, '-0', '-0', '2025-01-01 12:00:00.123456+09', '2025-01-01 00:00:00.000001', '0001-01-01 BC', '',
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, false),
 (0, '-Infinity', '-Infinity', '-infinity', 'infinity', 'infinity', NULL, '{"a":[1,2,{"b":null}],"e":"😀"}',
  'null', '{}', '{}', NULL, '-3 mons', 'sad', '', NULL);
INSERT INTO child (parent_id, "select") SELECT id, 'c' || id FROM parent;
INSERT INTO app2."Odd ""Na"" me" VALUES (E'w"e,i\\rd', 1, NULL);
"""
TABLES = ["public.parent", "public.child", 'app2."Odd ""Na"" me"']


def fresh_database(stack, name: str, owner: tuple[str, str] | None = None) -> str:
    """A new database in the session's stack; its URL as the cluster's admin (a superuser), or
    as `owner` (a role that is not a superuser, created here with that password)."""
    admin = stack.admin_connect()
    with admin.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if owner:
            cur.execute(f"DROP ROLE IF EXISTS {owner[0]}")
            cur.execute(f"CREATE ROLE {owner[0]} LOGIN PASSWORD %s", (owner[1],))
        cur.execute(f"CREATE DATABASE {name}" + (f" OWNER {owner[0]}" if owner else ""))
    admin.close()
    url = stack.admin_url(name)
    if owner:
        url = url.replace(url.split("://")[1].split("@")[0], f"{owner[0]}:{owner[1]}", 1)
    return url


@pytest.fixture(scope="module")
def database(stack):
    """A database of its own in the session's stack, reached through DATABASE_URL."""
    return fresh_database(stack, "backup_test")


@pytest.fixture
def db(database):
    conn = psycopg2.connect(database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(SCHEMA)
    yield conn
    conn.close()


@pytest.fixture
def target(database):
    return resolve_target(
        {}, environ={"DATABASE_URL": database.replace("postgresql://", "postgresql+asyncpg://")}
    )


def checksums(conn, tables=TABLES):
    out = {table: checksums_of(conn, table) for table in tables}
    with conn.cursor() as cur:
        cur.execute("SELECT version_num FROM alembic_version")
        out["alembic_version"] = cur.fetchall()
    return out


@pytest.mark.parametrize("json_rows", [False, True], ids=["copy-text", "json-rows"])
@pytest.mark.parametrize("check_first", [True, False], ids=["checked-first", "one-pass"])
def test_round_trip_is_exact_and_sequences_continue(db, target, tmp_path, check_first, json_rows):
    before = checksums(db)
    summary = create_backup(target, tmp_path, json_rows=json_rows)
    assert summary.path.name.startswith("backup_") and summary.path.name.endswith(".backup.gz")
    assert oct(summary.path.stat().st_mode & 0o777) == "0o600"
    assert not list(tmp_path.glob(".*partial"))
    assert summary.migration_version == "0aa2828fc065"
    assert list(summary.tables) == [
        'app2.Odd "Na" me',
        "public.parent",
        "public.child",
    ]  # parents first
    with db.cursor() as cur:
        cur.execute(
            "DELETE FROM child; DELETE FROM parent WHERE id > 1; UPDATE parent SET t = 'changed'"
        )
        cur.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    diff, result = restore_backup(
        target, summary.path, allow_other_version=True, check_first=check_first
    )
    assert result.restored_rows == 7
    assert diff.tables["public.child"].current_rows == 0
    assert diff.tables["public.child"].backup_rows == 3
    assert checksums(db) == before
    with db.cursor() as cur:
        cur.execute("INSERT INTO parent (t) VALUES ('next') RETURNING id, g")
        assert cur.fetchone() == (4, 8)  # identity continues; generated column recomputed
        cur.execute("INSERT INTO child (parent_id) VALUES (1) RETURNING id")
        assert cur.fetchone() == (4,)


def test_rows_are_copy_text_between_the_files_json_lines(db, target, tmp_path):
    """Format 2: the metadata and each table's header are JSON lines as before; the rows are the
    lines COPY prints, ended by COPY's end-of-data line."""
    path = create_backup(target, tmp_path).path
    text = gzip.decompress(path.read_bytes()).decode()
    head, rest = text.split("\n", 1)
    assert json.loads(head.removeprefix('{"metadata": ').removesuffix(","))["format"] == (
        "devkit-backup/2"
    )
    parent = rest.split('"public.parent": ', 1)[1]
    header, rows = parent.split("\n", 1)
    assert json.loads(header.removesuffix(', "data": [') + "}")["columns"][:2] == ["id", "n"]
    lines = rows.split("\n")
    assert lines[3] == "\\." and lines[4].startswith('], "row_count": 3}')
    first = lines[0].split("\t")
    assert first[1] == "12345678901234567890.0123456789"  # numeric from its own digits
    assert first[-2] == "tab\\there\\nnl \\\\ back \x01"  # COPY's escapes, \x01 as it is


def test_file_is_the_seeds_json_shape(db, target, tmp_path):
    """`db.backup --format json`: the earlier backup script's shape (format 1)."""
    path = create_backup(target, tmp_path, json_rows=True).path
    document = json.loads(gzip.decompress(path.read_bytes()))
    assert set(document["metadata"]) >= {
        "timestamp",
        "migration_version",
        "database_name",
        "database_host",
    }
    parent = document["tables"]["public.parent"]
    assert parent["row_count"] == 3 and len(parent["data"]) == 3
    assert "g" not in parent["columns"]  # generated columns are not written
    assert parent["data"][0][parent["columns"].index("n")] == pytest.approx(
        12345678901234567890.0123456789
    )


def test_a_file_written_like_the_seeds_example_restores(db, target, tmp_path):
    with db.cursor() as cur:
        cur.execute(
            "CREATE TABLE users (id int PRIMARY KEY, name text, email text, created_at timestamptz)"
        )
        cur.execute("CREATE TABLE sessions (session_id text, data jsonb, expires_at timestamptz)")
    seed = {
        "metadata": {
            "timestamp": "2025-11-01T12:34:56.789Z",
            "migration_version": "0aa2828fc065",
            "database_name": "myapp_db",
            "database_host": "localhost",
        },
        "tables": {
            "sessions": {
                "row_count": 1,
                "columns": ["session_id", "data", "expires_at"],
                "data": [["s1", {"cart": [1, 2]}, "2025-01-03T00:00:00Z"]],
            },
            "users": {
                "row_count": 2,
                "columns": ["id", "name", "email", "created_at"],
                "data": [
                    [1, "Alice", "alice@example.com", "2025-01-01T00:00:00Z"],
                    [2, "Bob", "bob@example.com", "2025-01-02T00:00:00Z"],
                ],
            },
        },
    }
    path = tmp_path / "backup_20251101_123456.backup.gz"
    path.write_bytes(gzip.compress(json.dumps(seed, indent=2).encode()))
    assert verify(path).checksum is False
    _, result = restore_backup(target, path)
    assert result.restored_rows == 3
    with db.cursor() as cur:
        cur.execute("SELECT name FROM users ORDER BY id")
        assert cur.fetchall() == [("Alice",), ("Bob",)]
        cur.execute("SELECT data->'cart' FROM sessions")
        assert cur.fetchone()[0] == [1, 2]
        cur.execute("DROP TABLE users, sessions")


@pytest.mark.parametrize("check_first", [True, False], ids=["checked-first", "one-pass"])
@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_file_fails_verify_diff_and_restore_and_changes_nothing(
    db, target, tmp_path, damage, check_first
):
    path = create_backup(target, tmp_path).path
    data = bytearray(gzip.decompress(path.read_bytes()))
    if damage == "flip":
        data[len(data) // 2] ^= 0x01  # one bit inside the data, re-compressed: gzip's CRC is fine
        path.write_bytes(gzip.compress(bytes(data)))
    else:
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with db.cursor() as cur:
        cur.execute("DELETE FROM child")
    before = checksums(db)
    with pytest.raises(CorruptBackup):
        verify(path)
    with pytest.raises(CorruptBackup):
        restore_backup(target, path, check_first=check_first)
    assert checksums(db) == before


def test_other_migration_version_is_refused_before_anything_changes(db, target, tmp_path):
    path = create_backup(target, tmp_path).path
    with db.cursor() as cur:
        cur.execute("UPDATE alembic_version SET version_num = 'b1b1b1b1b1b1'")
        cur.execute("DELETE FROM child")
    before = checksums(db)
    with pytest.raises(BackupError, match=r"0aa2828fc065.*b1b1b1b1b1b1") as caught:
        restore_backup(target, path)
    assert "--allow-other-version" in caught.value.hint
    assert checksums(db) == before


def test_a_failing_load_rolls_everything_back(db, target, tmp_path):
    path = create_backup(target, tmp_path).path
    with db.cursor() as cur:
        cur.execute("DELETE FROM child; INSERT INTO child (parent_id) VALUES (1)")
        cur.execute(
            'ALTER TABLE child ADD CONSTRAINT short CHECK (length("select") < 2)'
        )  # 'c1' violates it
    before = checksums(db)
    with pytest.raises(BackupError, match="nothing was changed"):
        restore_backup(target, path)
    assert checksums(db) == before


@pytest.mark.parametrize("check_first", [True, False], ids=["checked-first", "one-pass"])
@pytest.mark.parametrize(
    "rows",
    [["1\tc1\textra", "2"], ["1\tc1", "x\tc2"], ["\\N\tc1"], ["1\tc1\\", "1\tc2"]],
    ids=["shifted-tab", "not-an-integer", "null-into-not-null", "backslash-joins-lines"],
)
def test_copy_rows_the_table_refuses_change_nothing(db, target, tmp_path, rows, check_first):
    """Rows that pass the file's own checks (SHA-256, the count of tabs) but not the table's
    types: COPY's error ends the restore, rolled back, in one line."""
    from datetime import UTC, datetime

    from devkit.backup.fileformat import BackupWriter
    from devkit.backup.models import BackupMetadata

    with db.cursor() as cur:
        cur.execute("DELETE FROM child; INSERT INTO child (parent_id) VALUES (1)")
    before = checksums(db)
    metadata = BackupMetadata(
        timestamp=datetime(2026, 12, 6, tzinfo=UTC),
        migration_version="0aa2828fc065",
        database_name="d",
        database_host="h",
        tables=["public.child"],
    )
    writer = BackupWriter(tmp_path, metadata)
    writer.begin_table("public.child", ["parent_id", "select"], ["integer", "text"])
    writer.write_rows(rows)
    writer.end_table()
    path = writer.finish()
    with pytest.raises((BackupError, CorruptBackup), match=r"nothing was changed|damaged"):
        restore_backup(target, path, check_first=check_first)
    assert checksums(db) == before


@pytest.fixture(scope="module")
def owner_database(stack):
    """A database owned by a role that is not a superuser (as on a managed server)."""
    return fresh_database(stack, "backup_owner_test", owner=("devkit_owner", "owner-password-123"))


FK_SCHEMA = """
DROP TABLE IF EXISTS orders, customers, alembic_version;
CREATE TABLE customers (id int PRIMARY KEY);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int);
INSERT INTO customers VALUES (1), (2);
INSERT INTO orders VALUES (10, 1), (11, 2), (12, NULL);
"""


@pytest.mark.parametrize("role", ["superuser", "owner"])
def test_a_backup_that_breaks_a_foreign_key_changes_nothing(
    request, tmp_path, database, owner_database, role
):
    """A superuser's restore skips per-row FK triggers and checks each key in bulk; a plain
    owner's runs them. Either way an orphan row fails the restore before COMMIT."""
    url = database if role == "superuser" else owner_database
    conn = psycopg2.connect(url)
    conn.autocommit = True
    target = resolve_target({}, environ={"DATABASE_URL": url})
    tables = ["public.customers", "public.orders"]
    with conn.cursor() as cur:
        cur.execute(FK_SCHEMA)
        good = create_backup(target, tmp_path).path
        cur.execute("INSERT INTO orders VALUES (13, 99)")  # points at no customer
        orphaned = create_backup(target, tmp_path).path
        cur.execute(
            "DELETE FROM orders WHERE id IN (12, 13); ALTER TABLE orders ADD CONSTRAINT "
            "orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id)"
        )
    before = {t: checksums_of(conn, t) for t in tables}
    with pytest.raises(BackupError, match="orders_customer_fk") as refused:
        restore_backup(target, orphaned, check_first=False)
    assert "nothing was changed" in refused.value.args[0] + refused.value.hint
    assert {t: checksums_of(conn, t) for t in tables} == before
    diff, _ = restore_backup(target, good, check_first=False)  # NULL keys are fine
    assert diff.tables["public.orders"].backup_rows == 3
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM orders WHERE customer_id IS NULL")
        assert cur.fetchone() == (1,)
        cur.execute("DROP TABLE orders, customers")
    conn.close()


RING_SCHEMA = """
DROP TABLE IF EXISTS ring_a, ring_b, kept, parted, alembic_version CASCADE;
CREATE TABLE kept (id int PRIMARY KEY);
CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (50);
INSERT INTO parted VALUES (1);
CREATE TABLE ring_a (id int PRIMARY KEY, b_id int, up int REFERENCES ring_a (id),
  kept_id int REFERENCES kept (id));
CREATE TABLE ring_b (id int PRIMARY KEY, a_id int REFERENCES ring_a (id),
  p_id int REFERENCES parted (id));
ALTER TABLE ring_a ADD CONSTRAINT ring_a_b FOREIGN KEY (b_id) REFERENCES ring_b (id);
INSERT INTO kept VALUES (1);
"""
RING_ROWS = {
    "ring_a": ["1\t\\N\t\\N\t1", "2\t10\t1\t\\N"],
    "ring_b": ["10\t1\t1", "11\t2\t\\N"],
}


def ring_file(directory: Path, rows: dict[str, list[str]]) -> Path:
    from datetime import UTC, datetime

    from devkit.backup.fileformat import BackupWriter
    from devkit.backup.models import BackupMetadata

    metadata = BackupMetadata(
        timestamp=datetime(2026, 12, 6, tzinfo=UTC),
        migration_version=None,
        database_name="d",
        database_host="h",
        tables=["public.ring_a", "public.ring_b"],
    )
    writer = BackupWriter(directory, metadata)
    writer.begin_table("public.ring_a", ["id", "b_id", "up", "kept_id"], ["integer"] * 4)
    writer.write_rows(rows["ring_a"])
    writer.end_table()
    writer.begin_table("public.ring_b", ["id", "a_id", "p_id"], ["integer"] * 3)
    writer.write_rows(rows["ring_b"])
    writer.end_table()
    return writer.finish()


@pytest.mark.parametrize(
    ("orphan", "key"),
    [
        (("ring_a", 1, "2\t99\t1\t\\N"), "ring_a_b"),  # in a cycle of two tables
        (("ring_a", 1, "2\t10\t99\t\\N"), "ring_a_up_fkey"),  # to its own table
        (("ring_b", 0, "10\t99\t1"), "ring_b_a_id_fkey"),
        (("ring_b", 0, "10\t1\t99"), "ring_b_p_id_fkey"),  # to a partitioned table
        (("ring_a", 0, "1\t\\N\t\\N\t99"), "ring_a_kept_id_fkey"),  # to a table not restored
    ],
)
def test_every_foreign_key_is_checked_in_a_cycle_on_itself_and_to_a_kept_table(
    database, tmp_path, orphan, key
):
    """Each key is checked once both its tables hold their rows (a child's keys right after it
    loads): whichever table loads first, an orphan row is found before COMMIT."""
    conn = psycopg2.connect(database)
    conn.autocommit = True
    target = resolve_target({}, environ={"DATABASE_URL": database})
    tables = ["public.ring_a", "public.ring_b"]
    try:
        with conn.cursor() as cur:
            cur.execute(RING_SCHEMA)
        restore_backup(target, ring_file(tmp_path, RING_ROWS), check_first=False)
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM ring_a), (SELECT count(*) FROM ring_b)")
            assert cur.fetchone() == (2, 2)
        before = [checksums_of(conn, t) for t in tables]
        rows = {table: list(lines) for table, lines in RING_ROWS.items()}
        table, n, line = orphan
        rows[table][n] = line
        with pytest.raises(BackupError, match=key):
            restore_backup(target, ring_file(tmp_path, rows), check_first=False)
        assert [checksums_of(conn, t) for t in tables] == before
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS ring_a, ring_b, kept, parted CASCADE")
        conn.close()


INDEX_SCHEMA = """
DROP TABLE IF EXISTS badges, people, alembic_version;
CREATE TABLE people (id int PRIMARY KEY, email text, name text, code text, born date, tag text);
ALTER TABLE people ADD CONSTRAINT people_email_key UNIQUE (email);
ALTER TABLE people ADD CONSTRAINT people_born_name_key UNIQUE (born, name) WITH (fillfactor = 80);
ALTER TABLE people ADD CONSTRAINT people_code_key UNIQUE NULLS NOT DISTINCT (code)
  DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX people_lower_name ON people (lower(name) text_pattern_ops) INCLUDE (born)
  WITH (fillfactor = 70);
CREATE INDEX "people odd ""%"" name" ON people (born DESC NULLS LAST) WHERE name LIKE '%7%';
CREATE UNIQUE INDEX people_tag_key ON people (tag);
CREATE TABLE badges (id int PRIMARY KEY, tag text REFERENCES people (tag));
CREATE INDEX people_commented ON people (name, born);
COMMENT ON INDEX people_commented IS 'kept as it is';
CREATE INDEX people_clustered ON people (born);
CLUSTER people USING people_clustered;
"""
INDEX_ROWS = """
INSERT INTO people SELECT g, md5(g::text) || '@example.com', 'name ' || g, 'c' || g,
  date '2000-01-01' + g, 't' || g FROM generate_series(1, %s) g;
INSERT INTO badges VALUES (1, 't1');
"""
SET_ASIDE = {  # built again after a big table's rows
    "people_email_key",
    "people_code_key",
    "people_lower_name",
    'people odd "%" name',
}


def index_catalog(conn, table: str) -> dict[str, tuple]:
    """TABLE's indexes: name -> (oid, definition, its constraint's definition, comment, clustered)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT x.relname, x.oid, pg_get_indexdef(x.oid), pg_get_constraintdef(k.oid), "
            "obj_description(x.oid, 'pg_class'), i.indisclustered FROM pg_index i "
            "JOIN pg_class x ON x.oid = i.indexrelid "
            "LEFT JOIN pg_constraint k ON k.conindid = x.oid AND k.conrelid = i.indrelid "
            "WHERE i.indrelid = %s::regclass",
            (table,),
        )
        return {name: rest for name, *rest in cur.fetchall()}


def without_oids(catalog: dict[str, tuple]) -> dict[str, tuple]:
    return {name: rest[1:] for name, rest in catalog.items()}


@pytest.mark.parametrize("role", ["superuser", "owner"])
def test_a_big_tables_indexes_are_built_after_its_rows_as_they_were(
    tmp_path, database, owner_database, role
):
    """Plain indexes and UNIQUE constraints of a table of 5,000 rows are dropped before its rows
    and built after them (new OIDs), as they were; a primary key, indexes that a foreign key,
    a comment or CLUSTER depends on, and a constraint's index with storage options stay. A table
    of 500 rows keeps all of its indexes."""
    url = database if role == "superuser" else owner_database
    conn = psycopg2.connect(url)
    conn.autocommit = True
    target = resolve_target({}, environ={"DATABASE_URL": url})
    for rows, rebuilt in ((5000, SET_ASIDE), (500, set())):
        with conn.cursor() as cur:
            cur.execute(INDEX_SCHEMA + INDEX_ROWS % rows)
        path = create_backup(target, tmp_path).path
        before = index_catalog(conn, "people")
        content = checksums_of(conn, "people")
        restore_backup(target, path, check_first=False)
        after = index_catalog(conn, "people")
        assert without_oids(after) == without_oids(before)
        assert {name for name in before if before[name][0] != after[name][0]} == rebuilt
        assert checksums_of(conn, "people") == content
    with conn.cursor() as cur:
        cur.execute("DROP TABLE badges, people")
    conn.close()


@pytest.mark.parametrize("rows", [5000, 500])
def test_duplicates_in_a_big_or_small_table_change_nothing_and_name_the_index(
    db, target, tmp_path, rows
):
    from datetime import UTC, datetime

    from devkit.backup.fileformat import BackupWriter
    from devkit.backup.models import BackupMetadata

    with db.cursor() as cur:
        cur.execute(INDEX_SCHEMA + INDEX_ROWS % rows + "DROP TABLE badges;")
    before = (index_catalog(db, "people"), checksums_of(db, "people"))
    metadata = BackupMetadata(
        timestamp=datetime(2026, 12, 6, tzinfo=UTC),
        migration_version=None,
        database_name="d",
        database_host="h",
        tables=["public.people"],
    )
    writer = BackupWriter(tmp_path, metadata)
    writer.begin_table("public.people", ["id", "email", "code"], ["integer", "text", "text"])
    writer.write_rows(
        [f"{n}\t{'same' if n in (3, rows - 1) else n}@example.com\tc{n}" for n in range(rows)]
    )
    writer.end_table()
    path = writer.finish()
    with pytest.raises(BackupError, match="people_email_key") as refused:
        restore_backup(target, path, check_first=False)
    assert "nothing was changed" in refused.value.args[0]
    assert "same@example.com" not in str(refused.value.args)
    assert (index_catalog(db, "people"), checksums_of(db, "people")) == before
    with db.cursor() as cur:
        cur.execute("DROP TABLE people")


def checksums_of(conn, table):
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {table} x"
        )
        return cur.fetchone()[0]


def test_restore_waits_on_locks_only_up_to_its_timeout(db, target, tmp_path, database):
    path = create_backup(target, tmp_path).path
    holder = psycopg2.connect(database)
    with holder.cursor() as cur:
        cur.execute("LOCK TABLE child IN ACCESS SHARE MODE")
        started = time.monotonic()
        with pytest.raises(BackupError, match="stayed locked"):
            restore_backup(target, path, lock_timeout_s=1)
        assert time.monotonic() - started < 15
    holder.rollback()
    holder.close()


def test_backup_is_one_snapshot_under_concurrent_writes(db, target, tmp_path, database):
    """A writer adds one row to each of two tables per transaction; the backup must never
    contain one without the other."""
    with db.cursor() as cur:
        cur.execute("CREATE TABLE pair_a (n int); CREATE TABLE pair_b (n int)")
        cur.execute(
            "INSERT INTO pair_a SELECT generate_series(1, 200000); INSERT INTO pair_b SELECT generate_series(1, 200000)"
        )
    stop = threading.Event()

    def writer():
        conn = psycopg2.connect(database)
        with conn.cursor() as cur:
            n = 200000
            while not stop.is_set():
                n += 1
                cur.execute(
                    "INSERT INTO pair_a VALUES (%s); INSERT INTO pair_b VALUES (%s)", (n, n)
                )
                conn.commit()
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        summary = create_backup(target, tmp_path)
    finally:
        stop.set()
        thread.join()
    assert summary.tables["public.pair_a"] == summary.tables["public.pair_b"]
    with db.cursor() as cur:
        cur.execute("DROP TABLE pair_a, pair_b")


def test_row_level_security_never_hides_rows(db, target, tmp_path, database):
    with db.cursor() as cur:
        cur.execute("DROP ROLE IF EXISTS limited; CREATE ROLE limited LOGIN PASSWORD 'limited-pw'")
        cur.execute("CREATE TABLE secret (v text); INSERT INTO secret VALUES ('hidden')")
        cur.execute(
            "ALTER TABLE secret OWNER TO limited; ALTER TABLE secret ENABLE ROW LEVEL SECURITY"
        )
        cur.execute("ALTER TABLE secret FORCE ROW LEVEL SECURITY")
        cur.execute("GRANT USAGE ON SCHEMA public, app2 TO limited")
        cur.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public, app2 TO limited")
        cur.execute("GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO limited")
    url = (
        database.replace("://postgres:", "://limited:").split("@")[0].rsplit(":", 1)[0]
        + ":limited-pw@"
        + database.split("@")[1]
    )
    limited = resolve_target({}, environ={"DATABASE_URL": url})
    try:
        with pytest.raises(BackupError, match=r"row-level security|not allowed"):
            create_backup(limited, tmp_path)
        assert kit_files(tmp_path) == []  # neither a backup nor a partial file is left
    finally:
        with db.cursor() as cur:
            cur.execute("DROP TABLE secret; DROP OWNED BY limited; DROP ROLE limited")


# The main before format 2: its backups hold each row as a JSON array (format 1).
FORMAT_1_MAIN = "1df9a56"


def test_a_backup_the_previous_main_wrote_restores_exactly(stack, db, database, tmp_path):
    """Upgrades lose no backup: a file the previous main's own code wrote (format 1, JSON rows;
    run from a git worktree of it) restores with this kit to the same rows."""
    env = {"DATABASE_URL": database, "INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path / "backups")}
    with kit_at(FORMAT_1_MAIN, tmp_path / "previous-kit") as worktree:
        made = subprocess.run(
            [sys.executable, "-m", "devkit.cli", "db.backup"],
            cwd=worktree,
            env={**os.environ, **stack.env, **env, "PYTHONPATH": str(worktree)},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert made.returncode == 0, made.stderr
    path = made.stdout.strip().splitlines()[-1]
    assert b'"format": "devkit-backup/1"' in gzip.decompress(Path(path).read_bytes())[:4096]
    before = checksums(db)
    with db.cursor() as cur:
        cur.execute("DELETE FROM child; DELETE FROM parent WHERE id > 1; UPDATE parent SET t = 'x'")
    checked = stack.invoke("db.verify", path, extra_env=env)
    assert checked.returncode == 0 and "SHA-256 verified" in checked.stdout, checked.stderr
    done = stack.invoke("db.restore", path, "--yes", "--no-backup", extra_env=env)
    assert done.returncode == 0, done.stderr
    assert checksums(db) == before


def test_a_file_of_a_newer_format_is_named_as_such(stack, tmp_path):
    path = tmp_path / "backup_20261206_000000.backup.gz"
    meta = {"timestamp": "2026-12-06T00:00:00Z", "database_name": "d", "database_host": "h"}
    head = '{"metadata": ' + json.dumps({**meta, "format": "devkit-backup/3"}) + ',\n"tables": {\n'
    path.write_bytes(gzip.compress(head.encode() + b'},\n"sha256": "0"}\n'))
    checked = stack.invoke("db.verify", str(path))
    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    assert "in format devkit-backup/3, which a newer kit writes" in checked.stderr
    assert "fix: update the kit" in checked.stderr


def test_tasks_backup_verify_restore_from_the_command_line(stack, db, database, tmp_path):
    env = {"DATABASE_URL": database, "INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    made = stack.invoke("db.backup", extra_env=env)
    assert made.returncode == 0, made.stderr
    path = made.stdout.strip().splitlines()[-1]
    assert os.path.exists(path) and "public.parent: 3 rows" in made.stderr
    checked = stack.invoke("db.verify", os.path.basename(path), extra_env=env)
    assert checked.returncode == 0 and "SHA-256 verified" in checked.stdout
    refused = stack.invoke("db.restore", path, extra_env=env)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    with db.cursor() as cur:
        cur.execute("DELETE FROM child")
    dry = stack.invoke("db.restore", path, "--dry-run", extra_env=env)
    assert "public.child: 0 → 3 (+3)" in dry.stdout and "nothing changed" in dry.stdout
    done = stack.invoke("db.restore", path, "--yes", extra_env=env)
    assert done.returncode == 0, done.stderr
    assert "Restore completed: 3 tables, 7 rows" in done.stdout
    listed = stack.invoke("db.list", extra_env=env)
    assert os.path.basename(path) in listed.stdout


@pytest.fixture
def big_backup(db, target, tmp_path):
    """A backup large enough that a restore takes a moment, then the data changed after it."""
    with db.cursor() as cur:
        cur.execute("CREATE TABLE bulk (id int PRIMARY KEY, payload text)")
        cur.execute("INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series(1, 400000) g")
    path = create_backup(target, tmp_path).path
    with db.cursor() as cur:
        cur.execute("DELETE FROM bulk WHERE id % 3 = 0; UPDATE parent SET t = 'after the backup'")
    yield path
    with db.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bulk")


def wait_for_copy(db, direction: str = "FROM STDIN", timeout=30):
    """Until the kit's session is copying rows (FROM STDIN: a restore loading; TO STDOUT: a
    backup reading); its pid."""
    deadline = time.monotonic() + timeout
    with db.cursor() as cur:
        while time.monotonic() < deadline:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'devkit-backup' "
                f"AND query LIKE 'COPY %%{direction}%%' AND state = 'active'"
            )
            row = cur.fetchone()
            if row:
                return row[0]
            time.sleep(0.005)
    raise AssertionError(f"no COPY {direction} started")


def test_killed_restore_leaves_the_data_as_it_was(stack, db, database, big_backup):
    tables = [*TABLES, "public.bulk"]
    before = checksums(db, tables)
    process = subprocess.Popen(
        [INVOKE, "--search-root", str(KIT_ROOT), "db.restore", str(big_backup), "--yes"],
        env={**os.environ, **stack.env, "DATABASE_URL": database},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_copy(db)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The server notices the dead client and rolls its transaction back.
    deadline = time.monotonic() + 30
    while checksums(db, tables) != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.returncode == -signal.SIGKILL
    assert checksums(db, tables) == before


def test_cut_connection_leaves_the_data_as_it_was(db, target, big_backup):
    tables = [*TABLES, "public.bulk"]
    before = checksums(db, tables)
    outcome = {}

    def run():
        try:
            restore_backup(target, big_backup)
            outcome["error"] = None
        except Exception as exc:  # the restore must fail; which error is asserted below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    pid = wait_for_copy(db)
    with db.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    thread.join(60)
    # One line for the user, whatever the driver raised (was: the driver's error, a traceback).
    assert isinstance(outcome.get("error"), BackupError), outcome
    assert checksums(db, tables) == before


def test_a_terminal_gets_a_progress_bar(stack, db, database, tmp_path):
    """On a terminal db.backup and db.restore draw rich progress bars (on stderr)."""
    env = {"DATABASE_URL": database, "INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    made, code = stack.on_terminal("db.backup", extra_env=env)
    assert code == 0, made
    assert "Backing up" in made and "rows" in made
    path = made.strip().splitlines()[-1].strip()
    restored, code = stack.on_terminal("db.restore", path, "--yes", extra_env=env)
    assert code == 0, restored
    assert re.search(r"Restoring (public|app2)\.", restored)  # the bar, not the first line
    assert "Restore completed: 3 tables, 7 rows" in restored


def test_restore_replaces_the_files_tables_and_lists_the_others(stack, db, database, tmp_path):
    """A table made after the backup is left as it is, and said so; --exact empties it, and the
    dry run lists it first. (Was: every app table truncated, the diff naming only the file's.)"""
    env = {"DATABASE_URL": database, "INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    path = stack.invoke("db.backup", extra_env=env).stdout.strip().splitlines()[-1]
    with db.cursor() as cur:
        cur.execute("CREATE TABLE invoices (id int PRIMARY KEY)")
        cur.execute("INSERT INTO invoices SELECT generate_series(1, 500)")
    try:
        dry = stack.invoke("db.restore", path, "--dry-run", extra_env=env)
        assert dry.returncode == 0, dry.stderr
        line_with(dry.stdout, "not in the backup", "public.invoices (500 rows)")
        done = stack.invoke("db.restore", path, "--yes", "--no-backup", extra_env=env)
        assert done.returncode == 0, done.stderr
        line_with(done.stdout, "not in the backup", "public.invoices")
        assert checksums_of(db, "invoices") == checksums_of(db, "(SELECT generate_series(1, 500))")
        exact_dry = stack.invoke("db.restore", path, "--dry-run", "--exact", extra_env=env)
        assert (
            "not in the backup, emptied (--exact): public.invoices (500 rows)" in exact_dry.stdout
        )
        exact = stack.invoke("db.restore", path, "--yes", "--exact", "--no-backup", extra_env=env)
        assert exact.returncode == 0, exact.stderr
        with db.cursor() as cur:
            cur.execute("SELECT count(*) FROM invoices")
            assert cur.fetchone() == (0,)
    finally:
        with db.cursor() as cur:
            cur.execute("DROP TABLE invoices")


def test_restore_refuses_to_empty_a_table_another_kept_table_references(
    stack, db, database, tmp_path
):
    env = {"DATABASE_URL": database, "INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    path = stack.invoke("db.backup", extra_env=env).stdout.strip().splitlines()[-1]
    with db.cursor() as cur:
        cur.execute("CREATE TABLE notes (id int PRIMARY KEY, parent_id int REFERENCES parent(id))")
        cur.execute("INSERT INTO notes VALUES (1, 1)")
    try:
        before = checksums(db, [*TABLES, "public.notes"])
        refused = stack.invoke("db.restore", path, "--yes", extra_env=env)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        line_with(refused.stderr, "public.notes", "references public.parent")
        assert "fix: restore with --exact" in refused.stderr
        assert checksums(db, [*TABLES, "public.notes"]) == before
        assert list(tmp_path.glob("backup_*")) == [Path(path)]  # no safety backup left behind
    finally:
        with db.cursor() as cur:
            cur.execute("DROP TABLE notes")


def test_restore_takes_a_safety_backup_whose_undo_command_works(stack, db, database, tmp_path):
    env = {"DATABASE_URL": database, "INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    path = stack.invoke("db.backup", extra_env=env).stdout.strip().splitlines()[-1]
    with db.cursor() as cur:
        cur.execute("UPDATE parent SET t = 'edited after the backup'; DELETE FROM child")
        cur.execute("UPDATE alembic_version SET version_num = 'bbbbbbbbbbbb'")
    edited = checksums(db)
    done = stack.invoke("db.restore", path, "--yes", "--allow-other-version", extra_env=env)
    assert done.returncode == 0, done.stderr
    assert checksums(db) != edited
    # DATABASE_URL names another database than the stack's: a backup file, not a snapshot.
    safety = re.search(r"Kept first: backup (\S+)", done.stdout)
    assert safety and Path(safety.group(1)).is_file()
    undo = re.search(r"To undo it: devkit (db\.restore .+)$", done.stdout, re.M).group(1)
    assert undo.endswith("--yes --exact --allow-other-version")  # the versions differ
    undone = stack.invoke(*undo.split(), "--no-backup", extra_env=env)
    assert undone.returncode == 0, undone.stderr
    assert checksums(db) == edited
    skipped = stack.invoke(
        "db.restore", path, "--yes", "--no-backup", "--allow-other-version", extra_env=env
    )
    assert skipped.returncode == 0 and "Kept first" not in skipped.stdout
    assert len(list(tmp_path.glob("backup_*"))) == 2  # the backup and one safety backup


@pytest.mark.parametrize("writer", ["truncate", "restore"])
def test_backup_holds_the_rows_of_a_table_truncated_while_it_runs(
    db, target, tmp_path, database, writer
):
    """The two large tables are copied first; meanwhile another session TRUNCATEs (or restores
    into) the small one, not yet copied. It must wait for the backup, which holds the rows from
    before. (Was: the small table locked only when its own COPY started, so the TRUNCATE went
    through and the backup held an empty table, or the restored rows.)"""
    with db.cursor() as cur:
        cur.execute("CREATE TABLE big1 (id int, pad text); CREATE TABLE big2 (id int, pad text)")
        cur.execute("INSERT INTO big1 SELECT g, repeat('x', 200) FROM generate_series(1, 300000) g")
        cur.execute("INSERT INTO big2 SELECT g, repeat('y', 200) FROM generate_series(1, 300000) g")
        cur.execute(
            "CREATE TABLE small3 (id int); INSERT INTO small3 SELECT generate_series(1, 1000)"
        )
    try:
        replacement = None
        if writer == "restore":
            with db.cursor() as cur:
                cur.execute("DELETE FROM small3 WHERE id > 10")
            replacement = create_backup(target, tmp_path / "earlier").path
            with db.cursor() as cur:
                cur.execute("INSERT INTO small3 SELECT generate_series(11, 1000)")
        done = {}

        def other_session():
            if writer == "truncate":
                conn = psycopg2.connect(database)
                with conn.cursor() as cur:
                    cur.execute("TRUNCATE small3")
                conn.commit()
                conn.close()
            else:
                restore_backup(target, replacement, check_first=False, lock_timeout_s=60)
            done["at"] = time.monotonic()

        backup = threading.Thread(
            target=lambda: done.update(
                summary=create_backup(target, tmp_path), finished=time.monotonic()
            )
        )
        backup.start()
        wait_for_copy(db, "TO STDOUT")
        other = threading.Thread(target=other_session)
        other.start()
        backup.join(120)
        other.join(120)
        assert done["summary"].tables["public.small3"] == 1000
        assert done["at"] >= done["finished"] - 0.05  # it waited for the backup
        with db.cursor() as cur:
            cur.execute("SELECT count(*) FROM small3")
            assert cur.fetchone() == (0 if writer == "truncate" else 10,)
    finally:
        with db.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS big1, big2, small3")


def test_backup_waits_for_a_lock_only_up_to_its_timeout(db, target, tmp_path, database):
    holder = psycopg2.connect(database)
    with holder.cursor() as cur:
        cur.execute("LOCK TABLE child IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(BackupError, match="the tables stayed locked or kept changing for 1s"):
            create_backup(target, tmp_path, lock_timeout_s=1)
    holder.rollback()
    holder.close()
    assert kit_files(tmp_path) == []


@pytest.mark.parametrize("format_", ["copy", "json", "sql"])
def test_a_full_disk_leaves_no_partial_file_and_says_why(stack, db, database, tmp_path, format_):
    """RLIMIT_FSIZE stands in for a full disk (writes past it fail with EFBIG)."""
    import resource

    env = {
        **os.environ,
        **stack.env,
        "DATABASE_URL": database,
        "INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path),
    }
    # --format sql dumps the stack's own database (pg_dump in its container).
    conn = stack.connect() if format_ == "sql" else db
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE filler AS SELECT g, md5(g::text) AS m FROM generate_series(1, 200000) g"
        )
    try:
        ran = subprocess.run(
            [INVOKE, "--search-root", str(KIT_ROOT), "db.backup", "--format", format_],
            env=env,
            capture_output=True,
            text=True,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024)),
            check=False,
        )
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE filler")
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr
    assert re.search(r"^error: .*(cannot write the backup|pg_dump failed)", ran.stderr, re.M), (
        ran.stderr
    )
    assert "  fix: " in ran.stderr
    assert kit_files(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "env", "cause"),
    [
        (("--retention-days", "0"), {}, "--retention-days='0'"),
        ((), {"BACKUP_RETENTION_DAYS": "-3"}, "BACKUP_RETENTION_DAYS='-3'"),
        ((), {"BACKUP_RETENTION_DAYS": "0"}, "BACKUP_RETENTION_DAYS='0'"),
    ],
)
def test_prune_refuses_a_retention_below_one_day_and_deletes_nothing(
    stack, db, database, tmp_path, args, env, cause
):
    """Was: 0 or -3 deleted every backup but the newest; `--retention-days 0` was silently 7."""
    base = {"DATABASE_URL": database, "INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    for _ in range(2):
        made = stack.invoke("db.backup", extra_env=base)
        assert made.returncode == 0, made.stderr
    old = time.time() - 30 * 86400
    for path in tmp_path.iterdir():
        os.utime(path, (old, old))
    before = sorted(tmp_path.iterdir())
    refused = stack.invoke("db.prune", *args, extra_env={**base, **env})
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert (
        cause in refused.stderr and "fix:" in refused.stderr and "Traceback" not in refused.stderr
    )
    assert sorted(tmp_path.iterdir()) == before


def test_a_file_that_lists_a_table_it_does_not_hold_changes_nothing(db, target, tmp_path):
    """A file (damaged, or crafted with a fresh SHA-256) whose table list names a table it has
    no rows for: the restore would empty that table; it must roll back instead."""
    import hashlib

    path = create_backup(target, tmp_path).path
    text = gzip.decompress(path.read_bytes()).decode()
    head, _, _ = text.rpartition('"sha256": "')
    meta_line, rest = head.split("\n", 1)
    meta = json.loads(meta_line.removeprefix('{"metadata": ').removesuffix(","))
    meta["tables"].append("public.child_extra")
    with db.cursor() as cur:
        cur.execute("CREATE TABLE child_extra (v int); INSERT INTO child_extra VALUES (1), (2)")
    try:
        body = '{"metadata": ' + json.dumps(meta) + ",\n" + rest
        crafted = tmp_path / "backup_20990101_000000.backup.gz"
        digest = hashlib.sha256(body.encode()).hexdigest()
        crafted.write_bytes(gzip.compress((body + f'"sha256": "{digest}"}}\n').encode()))
        before = checksums(db, [*TABLES, "public.child_extra"])
        with pytest.raises(CorruptBackup, match=r"lists public\.child_extra but holds no rows"):
            restore_backup(target, crafted, check_first=False)
        assert checksums(db, [*TABLES, "public.child_extra"]) == before
    finally:
        with db.cursor() as cur:
            cur.execute("DROP TABLE child_extra")


def test_a_streamed_backup_sends_its_first_table_while_it_is_read(stack, tmp_path):
    """The first table of a stream (db.pull.source's stdout) goes out as its rows are read, not
    after the whole table: its last row is made to take 3 s, and most of the stream has left
    before then. (Before: every table was spooled whole first, so nothing left until then.)"""
    import io

    from devkit.backup.readers import Selection

    url = fresh_database(stack, "stream_test")
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE a_first (id int PRIMARY KEY, v int); CREATE TABLE b_second (id int);"
            "INSERT INTO a_first SELECT g, (g::bigint * 7919) % 1000003 FROM generate_series(1, 200000) g;"
            "INSERT INTO b_second SELECT generate_series(1, 10)"
        )
    conn.close()
    # 7 MB: read whole on the stream's own connection (from 8 MiB on, a table is read in parts
    # on both, test_a_big_table_is_read_in_parts_on_both_connections_each_row_once).
    slow_last_row = "CASE WHEN devkit_t.id = 200000 THEN (SELECT devkit_t.v FROM pg_sleep(3)) ELSE devkit_t.v END"

    class Arrivals(io.RawIOBase):
        def __init__(self):
            self.writes: list[tuple[float, int]] = []

        def writable(self):
            return True

        def write(self, data):
            self.writes.append((time.monotonic(), len(data)))
            return len(data)

    stream = Arrivals()
    target = resolve_target({}, environ={"DATABASE_URL": url})
    create_backup(
        target,
        tmp_path,
        select=lambda cur, tables: Selection(computed={"public.a_first": {"v": slow_last_row}}),
        stream=stream,
    )
    end = stream.writes[-1][0]
    early = sum(size for at, size in stream.writes if at < end - 2)
    assert early > 0.5 * sum(size for _, size in stream.writes), stream.writes[:5]


def test_bulk_sessions_reach_the_container_directly_else_the_published_port(
    stack, target, database, monkeypatch
):
    """Backups and restores connect to the stack's container at its own address when this
    machine reaches it (Docker Engine here), not through docker-proxy; anything else (no engine
    API, a network that is not this machine's, as Docker Desktop's VM) uses the published port."""
    from urllib.parse import urlsplit

    from devkit import engine_address
    from devkit.backup.session import connect

    container = f"{stack.values()['DEVKIT_PROJECT_NAME']}-postgres-1"
    address = subprocess.run(
        ["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
         container],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    port = urlsplit(database).port
    engine_address.container_address.cache_clear()
    try:
        conn = connect(target, bulk=True)
        assert (conn.info.host, conn.info.port) == (address, 5432)
        conn.close()
        conn = connect(target)  # everyday sessions: the published port, no engine call
        assert (conn.info.host, conn.info.port) == ("127.0.0.1", port)
        conn.close()
        # The engine's own answer (GET /containers/json), with the network's gateway made an
        # address this machine does not have (TEST-NET-1), as for Docker Desktop's networks.
        listed = engine_address._running_containers("/var/run/docker.sock")
        assert engine_address.published_at(listed, port) == (address, 5432)
        for container_json in listed:
            for network in container_json["NetworkSettings"]["Networks"].values():
                network["Gateway"] = "192.0.2.1"
        assert engine_address.published_at(listed, port) is None
        monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        engine_address.container_address.cache_clear()
        conn = connect(target, bulk=True)
        assert (conn.info.host, conn.info.port) == ("127.0.0.1", port)
        conn.close()
    finally:
        engine_address.container_address.cache_clear()


def test_a_big_table_is_read_in_parts_on_both_connections_each_row_once(
    db, target, tmp_path, monkeypatch
):
    """A table of 8 MiB or more is read as ranges of its pages on both reading connections at
    once (TID range scans), the second part spooled and written after the first: each row once,
    the count in the header the table's."""
    from devkit.backup import readers

    with db.cursor() as cur:
        cur.execute("CREATE TABLE bulk (id int PRIMARY KEY, payload text)")
        cur.execute("INSERT INTO bulk SELECT g, md5(g::text) FROM generate_series(1, 300000) g")
    read = []
    copy_rows = readers.copy_rows

    def recorded(cur, part, *args, **kwargs):
        read.append((part.table.qualified, part.pages, threading.current_thread().name))
        return copy_rows(cur, part, *args, **kwargs)

    monkeypatch.setattr(readers, "copy_rows", recorded)
    try:
        before = checksums(db, [*TABLES, "public.bulk"])
        summary = create_backup(target, tmp_path)
        parts = sorted((pages, thread) for name, pages, thread in read if name == "public.bulk")
        assert [pages for pages, _ in parts] == [(0, parts[1][0][0]), (parts[1][0][0], None)]
        assert {thread for _, thread in parts} == {"MainThread", "backup-read"}
        assert summary.tables["public.bulk"] == 300000
        with db.cursor() as cur:
            cur.execute("DELETE FROM bulk WHERE id % 2 = 0")
        restore_backup(target, summary.path)
        assert checksums(db, [*TABLES, "public.bulk"]) == before
    finally:
        with db.cursor() as cur:
            cur.execute("DROP TABLE bulk")
