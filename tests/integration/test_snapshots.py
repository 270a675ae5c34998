"""db.snapshot and friends on the real stack: copies of the app's database inside its server, put
back in one swap, with the app's open sessions ended and named, and nothing half-made."""

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import psycopg2
import pytest
import redis

from phrases import line_with

pytestmark = pytest.mark.docker

KIT_ROOT = Path(__file__).resolve().parents[2]
INVOKE = str(Path(sys.executable).with_name("invoke"))


def sql(stack, statement: str) -> None:
    conn = stack.connect()
    with conn, conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


def rows(stack, query: str) -> list:
    conn = stack.connect()
    with conn, conn.cursor() as cur:
        cur.execute(query)
        found = cur.fetchall()
    conn.close()
    return found


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

    from devkit.snapshot_catalog import redis_dir

    assert stack.invoke("db.snapshot", "--name", "goes-with-reset").returncode == 0
    assert re.search(r"^goes-with-reset\s.*\bredis\b", stack.invoke("db.snapshots").stdout, re.M)
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
    line_with(done.stdout, "deletes the snapshots", "goes-with-reset")
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
    line_with(second.stdout, "dropped", first_undo, "snapshot_keep")
    listed = stack.invoke("db.snapshots").stdout
    names = re.findall(r"^(\S+) ", listed, re.M)
    assert first_undo not in names and second_undo in names and "by-hand" in names
    assert re.search(rf"^{second_undo} .* automatic \(db\.snapshot\.restore\)$", listed, re.M)


# A failure in the middle of a snapshot command: its process killed, or its server session
# ended (as a full disk ends the copy with an error). The table makes the copy last long enough
# (tenths of a second) to be caught in the middle.
# devkit.snapshot_spares off (Invoke reads "0" as false): a restore copies the snapshot first.
NO_SPARES = {"INVOKE_DEVKIT_SNAPSHOT_SPARES": "0"}
BIG = "CREATE TABLE snap_items AS SELECT g AS id, repeat('x', 200) AS v FROM generate_series(1, 300000) g"


def start(stack, *args: str) -> subprocess.Popen:
    """The kit's command, running while the test acts on it."""
    return subprocess.Popen(
        [INVOKE, "--search-root", str(KIT_ROOT), *args],
        cwd=KIT_ROOT, env={**os.environ, **stack.env},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def polled(stack, query: str, values: tuple = (), pause: float = 0.05, going=lambda: True):
    """The first row QUERY (as the admin) returns within 60 s while GOING(), else None."""
    admin = stack.admin_connect("postgres")
    try:
        with admin.cursor() as cur:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and going():
                cur.execute(query, values or None)
                if row := cur.fetchone():
                    return row
                time.sleep(pause)
    finally:
        admin.close()
    return None


def copying(stack, process: subprocess.Popen) -> int:
    """The pid of the kit's server session once it copies a database (CREATE DATABASE)."""
    row = polled(
        stack,
        "SELECT pid FROM pg_stat_activity WHERE application_name = 'devkit-snapshot' "
        "AND query LIKE 'CREATE DATABASE%' AND state = 'active'",
        pause=0.002,
        going=lambda: process.poll() is None,
    )
    if row is None:
        raise AssertionError(f"no copy was seen: {process.communicate()}")
    return row[0]


def databases(stack) -> list[str]:
    admin = stack.admin_connect("postgres")
    with admin.cursor() as cur:
        cur.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1",
            (f"{stack.values()['PGDATABASE']}.%",),
        )
        found = [name for (name,) in cur.fetchall()]
    admin.close()
    return found


def end_session(stack, pid: int) -> None:
    admin = stack.admin_connect("postgres")
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    admin.close()


def test_a_snapshot_killed_while_it_copies_is_put_right_by_the_next_command(stack, snaps):
    """Killed while the app's database is closed to connections and the copy is made: the next
    command (here `devkit up`, which found the database refusing connections; was: it waited
    for devkit.ready_timeout, then blamed the machine's speed) opens the database again and
    removes the unmarked copy, saying so; the data is as it was and the app connects."""
    sql(stack, BIG)
    before = stack.fingerprint()
    process = start(stack, "db.snapshot", "--name", "killed")
    copying(stack, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    up = stack.invoke("up", extra_env={"INVOKE_DEVKIT_READY_TIMEOUT": "20"})
    assert up.returncode == 0, up.stdout + up.stderr
    assert (
        "was left closed to connections by an interrupted snapshot command: open again" in up.stderr
    )
    listed = stack.invoke("db.snapshots")
    assert listed.returncode == 0, listed.stderr
    assert not re.search(r"^killed ", listed.stdout, re.M)
    assert databases(stack) == []
    assert stack.fingerprint() == before  # the app's role connects, the data is the same


def test_a_snapshot_whose_copy_fails_leaves_nothing_half_made(stack, snaps):
    """The copy ends with an error half-way (its session ended, as a full disk ends it): exit 1
    with the cause and a fix, no snapshot, no copy of Redis's keys, the database open."""
    from types import SimpleNamespace

    from devkit.snapshot_catalog import redis_dir

    sql(stack, BIG)
    before = stack.fingerprint()
    process = start(stack, "db.snapshot", "--name", "cut-off")
    end_session(stack, copying(stack, process))
    out, err = process.communicate()
    assert process.returncode == 1, out + err
    assert "error: taking the snapshot failed" in err and "fix:" in err and "Traceback" not in err
    assert databases(stack) == []
    assert not (redis_dir(SimpleNamespace(project=stack.project)) / "cut-off.keys.gz").exists()
    assert stack.fingerprint() == before


def restoring_big(stack, snaps) -> tuple[subprocess.Popen, str]:
    """A snapshot of the big table (no ready copy: the restore copies it), the data changed
    since, and its restore started; with the database's fingerprint before the restore."""
    sql(stack, BIG)
    assert stack.invoke("db.snapshot", "--name", "big", extra_env=NO_SPARES).returncode == 0
    snaps.append("big")
    sql(stack, "DELETE FROM snap_items WHERE id > 1000")
    before = stack.fingerprint()
    return start(stack, "db.snapshot.restore", "big", "--yes"), before


def test_a_restore_killed_while_it_copies_leaves_the_database_as_it_was(stack, snaps):
    """Killed while it copies the snapshot (before the app is cut off): the database is as it
    was and open; the next snapshot command removes the copy the restore left."""
    process, before = restoring_big(stack, snaps)
    copying(stack, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert stack.fingerprint() == before
    listed = stack.invoke("db.snapshots")
    assert listed.returncode == 0, listed.stderr
    assert databases(stack) == [f"{stack.values()['PGDATABASE']}.snapshot.big"]


def test_a_restore_whose_copy_fails_leaves_the_database_as_it_was(stack, snaps):
    process, before = restoring_big(stack, snaps)
    end_session(stack, copying(stack, process))
    out, err = process.communicate()
    assert process.returncode == 1, out + err
    assert "error: copying the snapshot failed" in err and "fix:" in err and "Traceback" not in err
    assert databases(stack) == [f"{stack.values()['PGDATABASE']}.snapshot.big"]  # no .restoring
    assert stack.fingerprint() == before
    # The undo's copy of Redis's keys, made while the database was copied, went with it.
    from types import SimpleNamespace

    from devkit.snapshot_catalog import redis_dir

    kept = redis_dir(SimpleNamespace(project=stack.project))
    assert sorted(path.name for path in kept.glob("*.keys.gz")) == ["big.keys.gz"]


@contextmanager
def on_a_small_disk(stack, rows: int):
    """The app's database, with a table of ROWS rows of 200 bytes, moved into a tablespace on the
    postgres container's /dev/shm (a 64 MB tmpfs): a real disk that fills. Yields an admin
    connection; afterwards the table is dropped and the database moved back."""
    container = stack.container("postgres")
    database = stack.values()["PGDATABASE"]
    sql(stack, BIG.replace("300000", str(rows)))
    made = subprocess.run(
        ["docker", "exec", "-u", "postgres", container, "mkdir", "-p", "/dev/shm/devkit-full"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    admin = stack.admin_connect("postgres")
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE TABLESPACE devkit_full LOCATION '/dev/shm/devkit-full'")
            cur.execute(f'ALTER DATABASE "{database}" SET TABLESPACE devkit_full')
        yield admin
    finally:
        sql(stack, "DROP TABLE IF EXISTS snap_items")
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{database}" SET TABLESPACE pg_default')
            cur.execute("DROP TABLESPACE IF EXISTS devkit_full")
        admin.close()
        subprocess.run(
            ["docker", "exec", "-u", "postgres", container, "rm", "-rf", "/dev/shm/devkit-full"],
            check=False,
        )


def test_a_snapshot_that_fills_the_disk_leaves_nothing_half_made(stack, snaps):
    """A real full disk: the app's database is moved into a tablespace on the container's
    /dev/shm (a 64 MB tmpfs), where its copy cannot fit. The snapshot fails with the cause and a
    fix, no database and no copy of Redis's keys are left, and the app's database is open and
    unchanged."""
    from types import SimpleNamespace

    from devkit.snapshot_catalog import redis_dir

    # About 40 MB: it fits in the tmpfs once, not twice.
    with on_a_small_disk(stack, 160000):
        # Not stack.fingerprint(): its sorts would need temporary files in the full tablespace.
        summary = "SELECT count(*), sum(id), sum(length(v)) FROM snap_items"
        before = rows(stack, summary)
        full = stack.invoke("db.snapshot", "--name", "no-room")
        assert full.returncode == 1, full.stdout + full.stderr
        assert "error: taking the snapshot failed" in full.stderr, full.stderr
        assert "No space left on device" in full.stderr and "fix:" in full.stderr
        assert "Traceback" not in full.stderr
        assert databases(stack) == []
        assert not (redis_dir(SimpleNamespace(project=stack.project)) / "no-room.keys.gz").exists()
        assert rows(stack, summary) == before  # the app's role connects: the database is open


def spare_ready(stack, name: str) -> int:
    """The oid of snapshot NAME's ready copy, once it is made (devkit/snapshot_spares.py: made in
    the background after the command returned)."""
    spare = f"{stack.values()['PGDATABASE']}.spare.{name}"
    row = polled(
        stack,
        "SELECT oid FROM pg_database WHERE datname = %s AND NOT EXISTS (SELECT 1 "
        "FROM pg_stat_activity WHERE application_name = 'devkit-spare')",
        (spare,),
    )
    if row is None:
        raise AssertionError(f"no ready copy {spare} within 60 s")
    return row[0]


def database_row(stack, database: str) -> tuple:
    """(oid, owner, allows connections) of DATABASE."""
    admin = stack.admin_connect("postgres")
    with admin.cursor() as cur:
        cur.execute(
            "SELECT oid, pg_get_userbyid(datdba), datallowconn FROM pg_database WHERE datname = %s",
            (database,),
        )
        row = cur.fetchone()
    admin.close()
    return row


def test_a_restore_swaps_in_the_snapshots_ready_copy_and_makes_the_next(stack, snaps):
    """After `db.snapshot`, a copy of it is made in the background, owned by the kit's admin and
    closed to connections (the app's role cannot open, rename or drop it); the restore swaps that
    copy in (the app's database is then that very database, no copy made while the user
    waits), owned by the app and open; the next ready copy is made from the snapshot, so a
    second restore after more changes gives the snapshot's data again. The listing shows the
    copy's size; dropping the snapshot drops it."""
    app = stack.values()["PGDATABASE"]
    spare = f"{app}.spare.ready"
    sql(stack, "CREATE TABLE snap_items (id serial PRIMARY KEY, v text);"
               "INSERT INTO snap_items (v) SELECT 'row ' || g FROM generate_series(1, 500) g")  # fmt: skip
    before = stack.fingerprint()
    assert stack.invoke("db.snapshot", "--name", "ready").returncode == 0
    snaps.append("ready")
    first = spare_ready(stack, "ready")
    assert database_row(stack, spare) == (first, "postgres", False)
    conn = stack.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        for statement in (
            f'ALTER DATABASE "{spare}" WITH ALLOW_CONNECTIONS true',
            f'ALTER DATABASE "{spare}" RENAME TO "{app}.other"',
            f'DROP DATABASE "{spare}"',
        ):
            with pytest.raises(psycopg2.Error, match="must be owner"):
                cur.execute(statement)
    conn.close()
    with pytest.raises(psycopg2.OperationalError, match="not currently accepting connections"):
        psycopg2.connect(stack.values()["DATABASE_URL_SYNC"].rsplit("/", 1)[0] + f"/{spare}")
    listed = stack.invoke("db.snapshots").stdout
    sizes = re.search(r"^ready\s.* ([\d.]+) MiB  redis  ready copy ([\d.]+) MiB$", listed, re.M)
    assert sizes, listed
    counted = re.search(r"^snapshots: 1 \(([\d.]+) MiB\)", stack.invoke("status").stdout, re.M)
    assert counted and abs(float(counted[1]) - float(sizes[1]) - float(sizes[2])) < 0.2

    for change in ("DELETE FROM snap_items WHERE id > 10", "UPDATE snap_items SET v = 'changed'"):
        sql(stack, change)
        ready = spare_ready(stack, "ready")
        restored = stack.invoke("db.snapshot.restore", "ready", "--yes")
        assert restored.returncode == 0, restored.stderr
        assert database_row(stack, app) == (ready, stack.values()["PGUSER"], True)
        assert stack.fingerprint() == before
        sql(stack, "INSERT INTO snap_items (v) VALUES ('the app writes to it')")
    assert spare_ready(stack, "ready") not in (first, ready)  # made again after each restore

    dropped = stack.invoke("db.snapshot.drop", "ready", "--yes")
    assert dropped.returncode == 0, dropped.stderr
    snaps.remove("ready")
    assert database_row(stack, spare) is None


def test_a_restore_waits_for_a_ready_copy_being_made(stack, snaps):
    """A restore that comes while the snapshot's ready copy is being made (its maker holds the
    copy's lock) waits for it and swaps it in, instead of copying the snapshot a second time.
    The maker here is the test, holding the same lock and making the copy the same way."""
    app = stack.values()["PGDATABASE"]
    spare = f"{app}.spare.waited"
    sql(stack, "CREATE TABLE snap_items (id serial PRIMARY KEY, v text);"
               "INSERT INTO snap_items (v) SELECT 'row ' || g FROM generate_series(1, 500) g")  # fmt: skip
    before = stack.fingerprint()
    assert stack.invoke("db.snapshot", "--name", "waited", extra_env=NO_SPARES).returncode == 0
    snaps.append("waited")
    sql(stack, "DELETE FROM snap_items")
    maker = stack.admin_connect("postgres")
    try:
        with maker.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"devkit-spare:{spare}",))
            process = start(stack, "db.snapshot.restore", "waited", "--yes")
            time.sleep(2)
            assert process.poll() is None, process.communicate()
            assert databases(stack) == [f"{app}.snapshot.waited"]  # no copy of its own
            cur.execute(
                f'CREATE DATABASE "{spare}" TEMPLATE "{app}.snapshot.waited" STRATEGY FILE_COPY '
                "ALLOW_CONNECTIONS false"
            )
            made = database_row(stack, spare)[0]
            cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"devkit-spare:{spare}",))
    finally:
        maker.close()
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, out + err
    assert database_row(stack, app)[0] == made
    assert stack.fingerprint() == before
    spare_ready(stack, "waited")  # the next one


def test_a_ready_copy_whose_snapshot_is_gone_is_removed_and_named(stack, snaps):
    """A ready copy left without its snapshot (its snapshot dropped by an earlier kit, which did
    not know of copies) is removed by the next snapshot command, which names it; with
    devkit.snapshot_spares false no copy is made, and a restore copies the snapshot first."""
    app = stack.values()["PGDATABASE"]
    admin = stack.admin_connect("postgres")
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{app}.spare.gone" ALLOW_CONNECTIONS false')
    admin.close()
    listed = stack.invoke("db.snapshots")
    assert listed.returncode == 0, listed.stderr
    line_with(listed.stdout, "removed the ready copy of snapshot gone")
    assert databases(stack) == []

    sql(stack, "CREATE TABLE snap_items (id int)")
    assert stack.invoke("db.snapshot", "--name", "no-copy", extra_env=NO_SPARES).returncode == 0
    snaps.append("no-copy")
    restored = stack.invoke("db.snapshot.restore", "no-copy", "--yes", extra_env=NO_SPARES)
    assert restored.returncode == 0, restored.stderr
    time.sleep(1)
    assert [name for name in databases(stack) if ".spare." in name] == []


def test_no_ready_copy_is_made_where_it_would_fill_the_disk(stack, snaps):
    """The app's database on a 64 MB tmpfs (on_a_small_disk): the snapshot fits, its ready copy
    would leave less than its own size (and 1 GiB) free, so none is made, and the spare's log
    (0600) says why in one line; the snapshot itself is whole."""
    from types import SimpleNamespace

    from devkit.snapshot_catalog import redis_dir

    log = redis_dir(SimpleNamespace(project=stack.project)) / "spare.log"
    with on_a_small_disk(stack, 60000):  # about 15 MB
        log.unlink(missing_ok=True)
        taken = stack.invoke("db.snapshot", "--name", "no-room-spare")
        try:
            assert taken.returncode == 0, taken.stdout + taken.stderr
            deadline = time.monotonic() + 60
            while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
                time.sleep(0.1)
            line_with(
                log.read_text(), "the ready copy of snapshot no-room-spare was not made", "free"
            )
            assert oct(log.stat().st_mode & 0o777) == "0o600"
            database = stack.values()["PGDATABASE"]
            assert databases(stack) == [f"{database}.snapshot.no-room-spare"]
        finally:
            stack.invoke("db.snapshot.drop", "no-room-spare", "--yes")
