"""db.snapshot and friends on the real stack: copies of the app's database inside its server, put
back in one swap, with the app's open sessions ended and named, and nothing half-made."""

import re

import psycopg2
import pytest
import redis

pytestmark = pytest.mark.docker


def sql(stack, statement: str) -> None:
    conn = stack.connect()
    with conn, conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


def client(stack):
    return redis.Redis.from_url(stack.values()["REDIS_URL"])


@pytest.fixture
def snaps(stack):
    """The snapshots a test takes are dropped after it; it starts with none of the automatic
    ones earlier tests' restores kept."""
    stack.drop_automatic_snapshots()
    taken: list[str] = []
    yield taken
    for name in taken:
        stack.invoke("db.snapshot.drop", name, "--yes")
    stack.drop_automatic_snapshots()
    sql(stack, "DROP TABLE IF EXISTS snap_items")


def test_a_snapshot_restores_the_data_it_was_taken_with_and_keeps_an_undo(stack, snaps):
    sql(stack, "CREATE TABLE snap_items (id serial PRIMARY KEY, v text);"
               "INSERT INTO snap_items (v) SELECT 'row ' || g FROM generate_series(1, 500) g")  # fmt: skip
    client(stack).set("snap:key", "before")
    other_db = redis.Redis.from_url(stack.values()["REDIS_URL"].rsplit("/", 1)[0] + "/1")
    other_db.set("snap:db1", "kept with its time to live", ex=3600)
    before = stack.fingerprint()

    taken = stack.invoke("db.snapshot", "--name", "before-fix")
    assert taken.returncode == 0, taken.stderr
    snaps.append("before-fix")
    assert "snapshot before-fix:" in taken.stdout
    assert "devkit db.snapshot.restore before-fix" in taken.stdout

    sql(stack, "DELETE FROM snap_items WHERE id > 10; INSERT INTO snap_items (v) VALUES ('new')")
    client(stack).set("snap:key", "after")
    other_db.delete("snap:db1")
    after = stack.fingerprint()
    assert after != before

    listed = stack.invoke("db.snapshots")
    assert listed.returncode == 0 and re.search(r"^before-fix\s", listed.stdout, re.M)
    assert "snapshots: 1 (" in stack.invoke("status").stdout
    assert re.search(r"^snapshots\s+OK\s+1, ", stack.invoke("doctor").stdout, re.M)

    restored = stack.invoke("db.snapshot.restore", "before-fix", "--yes")
    assert restored.returncode == 0, restored.stderr
    assert stack.fingerprint() == before
    assert client(stack).get("snap:key") == b"before"
    assert other_db.get("snap:db1") == b"kept with its time to live"
    assert 3500 < other_db.ttl("snap:db1") <= 3600
    undo = re.search(r"to undo: devkit db\.snapshot\.restore (undo-\S+) --yes", restored.stdout)[1]

    # The undo snapshot holds what the restore replaced.
    again = stack.invoke("db.snapshot.restore", undo, "--yes")
    assert again.returncode == 0, again.stderr
    assert stack.fingerprint() == after
    assert client(stack).get("snap:key") == b"after"
    assert other_db.get("snap:db1") is None
    other_db.close()
    # The app works on the database swapped in: its role owns it and writes to it.
    sql(stack, "INSERT INTO snap_items (v) VALUES ('after the restore')")


def test_a_restore_ends_the_apps_open_sessions_naming_them(stack, snaps):
    taken = stack.invoke("db.snapshot", "--name", "with-sessions")
    assert taken.returncode == 0, taken.stderr
    snaps.append("with-sessions")
    held = psycopg2.connect(stack.values()["DATABASE_URL_SYNC"], application_name="my-app-worker")
    with held.cursor() as cur:
        cur.execute("SELECT 1")
    restored = stack.invoke("db.snapshot.restore", "with-sessions", "--yes")
    assert restored.returncode == 0, restored.stderr
    assert re.search(r"ending the session pid \d+ \(app, my-app-worker,", restored.stdout)
    with pytest.raises(psycopg2.OperationalError), held.cursor() as cur:
        cur.execute("SELECT 1")
    held.close()
    fresh = stack.connect()  # new sessions are let in again
    fresh.close()


@pytest.mark.parametrize(
    "args, code, cause",
    [
        (("db.snapshot", "--name", "Bad Name"), 2, "snapshot name 'Bad Name' is not allowed"),
        (("db.snapshot.restore", "no-such", "--yes"), 1, "no snapshot no-such of app_db"),
        (("db.snapshot.drop", "no-such", "--yes"), 1, "no snapshot no-such of app_db"),
        (
            ("db.snapshot.restore", "x"),
            2,
            "the restore replaces the app's database and no terminal",
        ),
    ],
)
def test_bad_snapshot_commands_change_nothing(stack, args, code, cause):
    before = stack.fingerprint()
    result = stack.invoke(*args)
    assert result.returncode == code, result.stdout + result.stderr
    assert f"error: {cause}" in result.stderr and "fix: " in result.stderr
    assert stack.fingerprint() == before


def test_a_snapshot_name_in_use_is_refused(stack, snaps):
    assert stack.invoke("db.snapshot", "--name", "twice").returncode == 0
    snaps.append("twice")
    again = stack.invoke("db.snapshot", "--name", "twice")
    assert again.returncode == 1
    assert "error: snapshot twice exists already" in again.stderr


def test_reset_names_the_snapshots_it_deletes_with_the_volume(stack, snaps, tmp_path):
    from types import SimpleNamespace

    from devkit.snapshots import redis_dir

    assert stack.invoke("db.snapshot", "--name", "goes-with-reset").returncode == 0
    assert re.search(r"^goes-with-reset\s.*redis$", stack.invoke("db.snapshots").stdout, re.M)
    redis_copy = redis_dir(SimpleNamespace(project=stack.project)) / "goes-with-reset.keys.gz"
    assert redis_copy.exists()
    # no terminal, no --yes: the prompt's words, nothing done
    refused = stack.invoke("db.reset", "--volumes")
    assert refused.returncode == 2
    assert "and the snapshots" in refused.stderr
    assert "goes-with-reset" in stack.invoke("db.snapshots").stdout
    done = stack.invoke(
        "db.reset", "--volumes", "--yes", "--no-backup",
        extra_env={"INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "The reset also deletes the snapshots: goes-with-reset" in done.stdout
    assert "no snapshots" in stack.invoke("db.snapshots").stdout
    assert not redis_copy.exists()


def test_automatic_snapshots_beyond_snapshot_keep_are_dropped_and_named(stack, snaps):
    """The undo snapshots of restores are automatic: with devkit.snapshot_keep 1, the second
    restore drops the first one's, naming it; the snapshot taken by hand stays."""
    assert stack.invoke("db.snapshot", "--name", "by-hand").returncode == 0
    snaps.append("by-hand")
    keep_one = {"INVOKE_DEVKIT_SNAPSHOT_KEEP": "1"}
    first = stack.invoke("db.snapshot.restore", "by-hand", "--yes", extra_env=keep_one)
    assert first.returncode == 0, first.stderr
    first_undo = re.search(r"kept as snapshot (undo-\S+)", first.stdout)[1]
    second = stack.invoke("db.snapshot.restore", "by-hand", "--yes", extra_env=keep_one)
    assert second.returncode == 0, second.stderr
    second_undo = re.search(r"kept as snapshot (undo-\S+)", second.stdout)[1]
    assert second_undo != first_undo
    assert f"dropped the automatic snapshot {first_undo} of " in second.stdout
    assert "(devkit.snapshot_keep: the newest 1 are kept)" in second.stdout
    listed = stack.invoke("db.snapshots").stdout
    names = re.findall(r"^(\S+) ", listed, re.M)
    assert first_undo not in names and second_undo in names and "by-hand" in names
    assert re.search(rf"^{second_undo} .* automatic \(db\.snapshot\.restore\)$", listed, re.M)
