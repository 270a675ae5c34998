"""Everyday tasks on the real stack, driven as a user would: psql, redis, migrations, reset."""

import gzip
import json
import re
import shlex
import shutil
import stat
import textwrap
from pathlib import Path

import pytest

from phrases import line_with

pytestmark = pytest.mark.docker

INITIAL = "c1104acd2fa6"


def sql(stack, query: str):
    conn = stack.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall() if cur.description else None
    finally:
        conn.close()


def test_setup_migrated_the_sample_app(stack):
    assert f"migrations: at {INITIAL} (1 applied)" in stack.first_setup.stdout
    assert sql(stack, "SELECT version_num FROM alembic_version") == [(INITIAL,)]
    tables = sql(
        stack, "SELECT tablename FROM pg_tables WHERE tablename LIKE 'sample_%' ORDER BY 1"
    )
    assert tables == [("sample_files",), ("sample_sessions",), ("sample_users",)]


def test_psql_one_command_piped_input_and_errors(stack):
    one = stack.invoke("db.psql", "-c", "SELECT current_user, current_database()")
    assert one.returncode == 0, one.stderr
    assert "app" in one.stdout and "app_db" in one.stdout
    piped = stack.invoke("db.psql", stdin="SELECT 40 + 2 AS answer;\n")
    assert piped.returncode == 0 and "42" in piped.stdout
    failed = stack.invoke("db.psql", "-c", "SELECT * FROM no_such_table")
    assert failed.returncode != 0 and "no_such_table" in failed.stderr


def test_psql_session_on_a_terminal_has_line_editing(stack):
    """\\dt lists the sample tables; a line edited with the arrow keys runs as edited; \\q quits."""
    left = b"\x1b[D"
    shown, code = stack.on_terminal(
        "db.psql", inputs=(b"\\dt\r", b"SELECT 4;" + left + left + b"1\r", b"\\q\r")
    )
    assert code == 0, shown
    assert "sample_users" in shown and "alembic_version" in shown
    assert re.search(r"\b14\b", shown), shown  # "SELECT 4;" became "SELECT 14;"


def test_redis_tasks(stack):
    import redis

    client = redis.Redis.from_url(stack.values()["REDIS_URL"])
    client.flushall()
    client.mset({f"user:{i}": i for i in range(2500)} | {"other": 1})
    assert stack.invoke("redis.ping").stdout.startswith("PONG (redis 7.")
    listed = stack.invoke("redis.keys", "--pattern", "user:*", "--limit", "5")
    assert listed.returncode == 0
    assert "2500 key(s) match 'user:*' (first 5 printed" in listed.stdout
    assert len([line for line in listed.stdout.splitlines() if line.startswith("user:")]) == 5
    one = stack.invoke("redis.cli", "-c", "GET user:7")
    assert one.returncode == 0 and one.stdout.strip() == "7"
    session, code = stack.on_terminal(
        "redis.cli", inputs=(b"SET greeting hello\r", b"GET greeting\r", b"quit\r")
    )
    assert code == 0 and '"hello"' in session, session
    # redis-cli started once the terminal had its size: it never had to ask for the cursor.
    assert "\x1b[6n" not in session, session
    refused = stack.invoke("redis.flush")  # no terminal, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert client.dbsize() == 2502
    flushed = stack.invoke("redis.flush", "--yes")
    assert flushed.returncode == 0 and "2502 key(s) deleted" in flushed.stdout
    assert client.dbsize() == 0
    client.close()


def write_migration(stack, revision: str, down: str, body: str, undo: str) -> None:
    path = stack.app_dir / "migrations" / "versions" / f"{revision}_test.py"
    path.write_text(
        textwrap.dedent(
            f'''\
            """test migration {revision}"""
            import sqlalchemy as sa
            from alembic import op

            revision = "{revision}"
            down_revision = {down!r}
            branch_labels = None
            depends_on = None


            def upgrade():
                {body}


            def downgrade():
                {undo}
            '''
        )
    )


@pytest.fixture
def migrations_dir(stack):
    """The app's migrations as they were, and the database back at the initial revision, after."""
    versions = stack.app_dir / "migrations" / "versions"
    before = {p.name for p in versions.glob("*.py")}
    yield versions
    sql(
        stack,
        f"DROP TABLE IF EXISTS sample_tags; UPDATE alembic_version SET version_num = '{INITIAL}'",
    )
    sql(stack, "ALTER TABLE sample_users DROP COLUMN IF EXISTS nickname")
    sql(stack, "DELETE FROM alembic_version WHERE version_num <> " + f"'{INITIAL}'")
    for path in versions.glob("*.py"):
        if path.name not in before:
            path.unlink()
    shutil.rmtree(versions / "__pycache__", ignore_errors=True)


def test_migrate_keeps_a_snapshot_first_and_says_how_to_undo(stack, migrations_dir, tmp_path):
    """On this machine's stack the database is kept as a snapshot before a migration (was: a
    JSON backup, whose restore grows with the data), and the command printed puts back the data
    and the revision as they were; `--backup` keeps a backup file instead."""
    made = stack.invoke("db.revision", "-m", "add nickname")
    assert made.returncode == 0, made.stderr
    created = next(p for p in migrations_dir.glob("*add_nickname.py"))
    assert f"Revises: {INITIAL}" in created.read_text()
    created.unlink()
    write_migration(
        stack,
        "a1a1a1a1a1a1",
        INITIAL,
        'op.add_column("sample_users", sa.Column("nickname", sa.String(50)))',
        'op.drop_column("sample_users", "nickname")',
    )
    sql(
        stack,
        "INSERT INTO sample_users (email, username, hashed_password) VALUES ('m@x', 'm', '!')",
    )
    env = {"INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'sample_users'"
    try:
        migrated = stack.invoke("db.migrate", extra_env=env)
        assert migrated.returncode == 0, migrated.stderr
        kept = re.search(r"Kept first: snapshot (before-migrate-\S+)", migrated.stderr)
        assert kept and not list(tmp_path.iterdir()), migrated.stderr
        assert f"Migrated {INITIAL} → a1a1a1a1a1a1" in migrated.stdout
        assert f"To undo: devkit db.downgrade {INITIAL}" in migrated.stdout
        assert f"then devkit db.snapshot.restore {kept[1]} --yes" in migrated.stdout
        assert ("nickname",) in sql(stack, columns)
        assert "a1a1a1a1a1a1 (head)" in stack.invoke("db.current").stdout
        history = stack.invoke("db.history").stdout
        assert "a1a1a1a1a1a1" in history and INITIAL in history and "(current)" in history
        listed = stack.invoke("db.snapshots").stdout
        assert re.search(rf"^{kept[1]} .* {INITIAL} .* automatic \(db\.migrate\)$", listed, re.M)

        # The snapshot holds the schema and the revision from before the migration.
        back = stack.invoke("db.snapshot.restore", kept[1], "--yes")
        assert back.returncode == 0, back.stderr
        assert ("nickname",) not in sql(stack, columns)
        assert f"{INITIAL}" in stack.invoke("db.current").stdout
        assert sql(stack, "SELECT count(*) FROM sample_users WHERE username = 'm'") == [(1,)]

        by_file = stack.invoke("db.migrate", "--backup", extra_env=env)
        assert by_file.returncode == 0, by_file.stderr
        backup = re.search(r"Kept first: backup (\S+)", by_file.stderr)
        assert backup and (tmp_path / backup[1].split("/")[-1]).exists(), by_file.stderr
        assert f"then devkit db.restore {backup[1]} --yes" in by_file.stdout
        again = stack.invoke("db.migrate", extra_env=env)
        line_with(again.stdout, "Nothing to do", "a1a1a1a1a1a1")
        both = stack.invoke("db.downgrade", "-1", "--backup", "--no-backup")
        assert both.returncode == 2 and "contradict" in both.stderr
        down = stack.invoke("db.downgrade", "-1", "--no-backup", extra_env=env)
        assert down.returncode == 0, down.stderr
        assert f"Migrated a1a1a1a1a1a1 → {INITIAL}" in down.stdout
        assert "Kept first" not in down.stderr
        assert ("nickname",) not in sql(stack, columns)
    finally:
        sql(stack, "DELETE FROM sample_users WHERE username = 'm'")
        stack.drop_automatic_snapshots()


class AtA1:
    """The app with two more migrations (a1: a column added, a2: a table added), a backup taken
    at a1 holding the user 'nick', and helpers to move the schema and look at it."""

    def __init__(self, stack, directory):
        self.stack, self.env = stack, {"INVOKE_DEVKIT_BACKUP_DIR": str(directory)}
        self.directory = directory

    def at(self) -> str:
        return sql(self.stack, "SELECT version_num FROM alembic_version")[0][0]

    def move(self, task: str, revision: str) -> None:
        moved = self.stack.invoke(
            task, *(["--revision"] if task == "db.migrate" else []), revision, "--no-backup",
            extra_env=self.env,
        )  # fmt: skip
        assert moved.returncode == 0, moved.stderr

    def nick(self) -> list:
        return sql(self.stack, "SELECT email FROM sample_users WHERE username = 'nick'")

    def restore(self, path, *flags: str):
        return self.stack.invoke("db.restore", str(path), "--yes", *flags, extra_env=self.env)

    def backup(self, *args: str) -> str:
        made = self.stack.invoke("db.backup", *args, extra_env=self.env)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip().splitlines()[-1]


@pytest.fixture
def at_a1(stack, migrations_dir, tmp_path):
    write_migration(
        stack, "a1a1a1a1a1a1", INITIAL,
        'op.add_column("sample_users", sa.Column("nickname", sa.String(50)))',
        'op.drop_column("sample_users", "nickname")',
    )  # fmt: skip
    write_migration(
        stack, "a2a2a2a2a2a2", "a1a1a1a1a1a1",
        'op.create_table("sample_tags", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("sample_tags")',
    )  # fmt: skip
    app = AtA1(stack, tmp_path)
    try:
        app.move("db.migrate", "a1a1a1a1a1a1")
        sql(
            stack,
            "INSERT INTO sample_users (email, username, hashed_password, nickname) "
            "VALUES ('nick@x', 'nick', '!', 'Nicky')",
        )
        app.a1_backup = app.backup()
        app.a1_json_backup = app.backup("--format", "json")  # format 1: one JSON document
        sql(stack, "DELETE FROM sample_users WHERE username = 'nick'")
        yield app
    finally:
        sql(stack, "DELETE FROM sample_users WHERE username = 'nick'")
        stack.drop_automatic_snapshots()


@pytest.mark.parametrize(
    ("task", "revision", "flags", "ends_at"),
    [
        ("db.downgrade", INITIAL, (), INITIAL),  # the database behind the backup
        ("db.migrate", "a2a2a2a2a2a2", (), "a2a2a2a2a2a2"),  # ahead of it
        ("db.downgrade", INITIAL, ("--to-head",), "a2a2a2a2a2a2"),  # behind, then to head
    ],
    ids=["behind", "ahead", "to-head"],
)
def test_a_backup_of_another_migration_version_restores_through_the_apps_migrations(
    at_a1, task, revision, flags, ends_at
):
    """A backup taken at a1 restores with no flag: the schema goes to a1, the data loads, the
    schema goes back to where it was (`--to-head`: to head). Was: refused, and with
    --allow-other-version a1 was written into alembic_version whatever the schema."""
    at_a1.move(task, revision)
    done = at_a1.restore(at_a1.a1_backup, *flags)
    assert done.returncode == 0, done.stdout + done.stderr
    line_with(done.stdout, "a1a1a1a1a1a1", f"database at {revision}")
    line_with(done.stdout, "Migrated back", ends_at)
    line_with(done.stdout, "devkit db.snapshot.restore before-restore-")
    assert at_a1.at() == ends_at and at_a1.nick() == [("nick@x",)]


def test_a_file_of_the_earlier_backup_script_restores_across_versions_too(at_a1):
    """A file in the earlier backup script's shape (one JSON document, no checksum, no column
    types) at a1 restores the same way, with no flag."""
    document = json.loads(gzip.decompress(Path(at_a1.a1_json_backup).read_bytes()))
    document.pop("sha256", None)
    document["metadata"] = {
        key: document["metadata"][key]
        for key in ("timestamp", "migration_version", "database_name", "database_host")
    }
    for table in document["tables"].values():
        table.pop("column_types", None)
    seed = at_a1.directory / "backup_20251101_123456.backup.gz"
    seed.write_bytes(gzip.compress(json.dumps(document, indent=2).encode()))
    at_a1.move("db.downgrade", INITIAL)
    done = at_a1.restore(seed)
    assert done.returncode == 0, done.stdout + done.stderr
    assert at_a1.at() == INITIAL and at_a1.nick() == [("nick@x",)]


@pytest.fixture
def unknown_revision_backup(at_a1):
    """A backup recording a migration the app does not have, and the database at a2."""
    at_a1.move("db.migrate", "a2a2a2a2a2a2")
    sql(at_a1.stack, "UPDATE alembic_version SET version_num = 'dead00000000'")
    unknown = at_a1.backup()
    sql(at_a1.stack, "UPDATE alembic_version SET version_num = 'a2a2a2a2a2a2'")
    return unknown


def test_a_backup_of_a_revision_the_app_lacks_is_refused_and_nothing_changes(
    at_a1, unknown_revision_backup
):
    before = at_a1.stack.fingerprint()
    refused = at_a1.restore(unknown_revision_backup)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    line_with(refused.stderr, "error:", "dead00000000")
    line_with(refused.stderr, f"a2a2a2a2a2a2, a1a1a1a1a1a1, {INITIAL}")
    assert "--allow-other-version" in refused.stderr and "Traceback" not in refused.stderr
    assert at_a1.stack.fingerprint() == before


def test_allow_other_version_loads_as_it_is_and_names_the_fix(at_a1, unknown_revision_backup):
    forced = at_a1.restore(unknown_revision_backup, "--allow-other-version")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    line_with(forced.stderr, "warning:", "dead00000000")
    assert "SET version_num = 'a2a2a2a2a2a2'" in forced.stderr
    assert at_a1.at() == "dead00000000"


def test_alembic_errors_become_causes_with_fixes(stack, migrations_dir):
    write_migration(stack, "b2b2b2b2b2b2", INITIAL, "pass", "pass")
    outdated = stack.invoke("db.revision", "-m", "x", "--autogenerate")
    assert outdated.returncode == 1
    assert (
        "behind the newest migration" in outdated.stderr and "devkit db.migrate" in outdated.stderr
    )
    # A parallel branch: two heads.
    write_migration(stack, "c3c3c3c3c3c3", INITIAL, "pass", "pass")
    heads = stack.invoke("db.migrate", "--no-backup")
    assert heads.returncode == 1
    assert "several heads" in heads.stderr and "devkit db.merge-heads" in heads.stderr
    merged = stack.invoke("db.merge-heads")
    assert merged.returncode == 0, merged.stderr
    assert stack.invoke("db.migrate", "--no-backup").returncode == 0
    at = sql(stack, "SELECT version_num FROM alembic_version")
    assert len(at) == 1 and at[0][0] not in (INITIAL, "b2b2b2b2b2b2", "c3c3c3c3c3c3")
    # The database names a revision that no file has.
    sql(stack, "UPDATE alembic_version SET version_num = 'dead00000000'")
    lost = stack.invoke("db.current")
    assert lost.returncode == 1
    line_with(lost.stderr, "error:", "dead00000000")
    assert "fix:" in lost.stderr


def test_reset_refuses_without_yes_and_for_other_databases(stack):
    sql(
        stack,
        "INSERT INTO sample_users (email, username, hashed_password) VALUES ('keep@x', 'keep', '!')",
    )
    refused = stack.invoke("db.reset")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    remote = stack.invoke(
        "db.reset", "--yes", extra_env={"DATABASE_URL": "postgresql://u:p@db.example.com:5432/prod"}
    )
    assert remote.returncode == 1
    assert (
        "db.reset works only on this machine's stack" in remote.stderr
        and "db.example.com" in remote.stderr
    )
    asked, code = stack.on_terminal("db.reset", inputs=(b"n\r",))  # a user who says no
    assert code == 1 and "keeping what they hold as a snapshot? [y/N]" in asked
    assert "cancelled; nothing changed" in asked
    assert sql(stack, "SELECT count(*) FROM sample_users WHERE username = 'keep'") == [(1,)]


def reset_and_undo(stack, tmp_path, *flags: str) -> str:
    """db.reset with FLAGS on data the migrations do not know (a table) and Redis's keys; then
    the undo it prints. What the reset deleted is back (was: "tables in the backup are missing
    here: public.keepme", the JSON backup holds data, not schema; Redis's keys were not saved).
    Returns the reset's output."""
    import redis

    sql(
        stack,
        "INSERT INTO sample_users (email, username, hashed_password) VALUES ('gone@x', 'gone', '!')",
    )
    sql(stack, "CREATE TABLE keepme AS SELECT g AS id FROM generate_series(1, 321) g")
    users = sql(stack, "SELECT email FROM sample_users ORDER BY id")
    client = redis.Redis.from_url(stack.values()["REDIS_URL"])
    client.set("session:keep", "still here")
    env = {"INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    done = stack.invoke("db.reset", "--yes", *flags, extra_env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Migrated to {INITIAL}" in done.stdout and "Seeded (seed.py)" in done.stdout
    assert sql(stack, "SELECT username FROM sample_users ORDER BY id") == [("alice",)]
    assert sql(stack, "SELECT count(*) FROM sample_sessions") == [(1,)]
    assert sql(stack, "SELECT to_regclass('keepme') IS NULL") == [(True,)]
    assert client.get("session:keep") is None
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    undo = re.search(r"to get the data back: (.+)$", done.stdout, re.M)[1]
    for command in undo.split(" && "):
        words = shlex.split(command)
        assert words[0] == "devkit"
        ran = stack.invoke(*words[1:], extra_env=env)
        assert ran.returncode == 0, ran.stdout + ran.stderr
    assert sql(stack, "SELECT count(*) FROM keepme") == [(321,)]
    assert sql(stack, "SELECT email FROM sample_users ORDER BY id") == users
    client = redis.Redis.from_url(stack.values()["REDIS_URL"])
    assert client.get("session:keep") == b"still here"
    client.close()
    sql(stack, "DROP TABLE keepme")
    sql(stack, "DELETE FROM sample_users WHERE username = 'gone'")
    return done.stdout


def test_reset_keeps_a_snapshot_recreates_migrates_and_seeds_and_its_undo_works(stack, tmp_path):
    """The volumes stay: the database is set aside as a snapshot (nothing copied), no file is
    written, and the app's role owns the new database."""
    try:
        output = reset_and_undo(stack, tmp_path)
        assert re.search(r"^Kept first: snapshot before-reset-\S+ ", output, re.M), output
        assert not list(tmp_path.iterdir())
    finally:
        stack.drop_automatic_snapshots()


def test_reset_volumes_backs_up_to_files_and_its_undo_works(stack, tmp_path):
    output = reset_and_undo(stack, tmp_path, "--volumes")
    line_with(output, "Removing", "volumes", "project")
    first = re.search(
        r"^Backup first: (\S+) \(PostgreSQL, schema and data\), (\S+) \(Redis\)$", output, re.M
    )
    assert first and all(Path(path).parent == tmp_path for path in first.groups()), output


def test_autogenerate_writes_the_models_change(stack, migrations_dir):
    models = stack.app_dir / "app" / "models.py"
    original = models.read_text()
    try:
        models.write_text(
            original.replace(
                "    hashed_password: Mapped[str] = mapped_column(String(255))\n",
                "    hashed_password: Mapped[str] = mapped_column(String(255))\n"
                "    nickname: Mapped[str | None] = mapped_column(String(50))\n",
            )
        )
        made = stack.invoke("db.revision", "-m", "add nickname", "--autogenerate")
        assert made.returncode == 0, made.stderr
        script = next(migrations_dir.glob("*add_nickname.py")).read_text()
        assert "op.add_column('sample_users', sa.Column('nickname'" in script
        assert "op.drop_column('sample_users', 'nickname')" in script
    finally:
        models.write_text(original)


def test_a_failed_restore_after_a_reset_deletes_no_undo_point(stack, tmp_path):
    """Issue 26: a restore that failed after a reset had already pruned `before-reset-…` (the
    newest snapshot_keep were counted with its own new one): the reset's only undo was gone.
    Older undo points now go only once the new command succeeded."""
    keep_one = {"INVOKE_DEVKIT_SNAPSHOT_KEEP": "1"}
    stack.drop_automatic_snapshots()
    try:
        users = sql(stack, "SELECT email FROM sample_users ORDER BY id")
        reset = stack.invoke("db.reset", "--yes", extra_env=keep_one)
        assert reset.returncode == 0, reset.stderr
        undo = re.search(r"devkit db\.snapshot\.restore (before-reset-\S+) --yes", reset.stdout)[1]
        dump = tmp_path / "old.sql"
        dump.write_text(
            "--\n-- PostgreSQL database dump\n--\nCREATE TABLE public.sample_users (id integer);\n"
        )
        failed = stack.invoke("db.restore", str(dump), "--yes", extra_env=keep_one)
        assert failed.returncode == 1 and "already exists" in failed.stderr
        listed = stack.invoke("db.snapshots").stdout
        assert re.search(rf"^{undo}\s", listed, re.M), listed
        assert "--clean" in failed.stderr
        back = stack.invoke("db.snapshot.restore", undo, "--yes")
        assert back.returncode == 0, back.stderr
        assert sql(stack, "SELECT email FROM sample_users ORDER BY id") == users
    finally:
        stack.drop_automatic_snapshots()


def test_psql_takes_several_commands_in_turn(stack):
    done = stack.invoke("db.psql", "-c", "SELECT 'first' AS a", "-c", "SELECT 'second' AS b")
    assert done.returncode == 0, done.stderr
    assert done.stdout.index("first") < done.stdout.index("second")


def test_a_backup_without_a_migration_version_names_the_flag(stack, tmp_path):
    """A database made by init_db (create_all) records no Alembic revision: its backup into a
    migrated database is refused with the flag that restores it as it is."""
    env = {"INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    sql(stack, "DELETE FROM alembic_version")  # as the backup of such a database records
    try:
        made = stack.invoke("db.backup", extra_env=env)
        assert made.returncode == 0, made.stderr
    finally:
        sql(stack, f"INSERT INTO alembic_version VALUES ('{INITIAL}')")
    path = made.stdout.strip().splitlines()[-1]
    refused = stack.invoke("db.restore", path, "--yes", extra_env=env)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    said = " ".join(refused.stderr.split())
    assert (
        "records no migration version" in said
        and f"devkit db.restore {path} --allow-other-version" in said
    )
    preview = stack.invoke("db.restore", path, "--dry-run", "--allow-other-version", extra_env=env)
    line_with(preview.stdout, "Migration version", INITIAL, "kept")
