"""Upgrades keep data: a workstation that the previous main set up (its own code, checked out from
this repository's history) changes over in place on the next `setup`, with nothing lost."""

import shutil
import stat
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
import redis
from history import kit_at

from devkit.admin_password import admin_env_file
from devkit.backup.dump import create_backup
from devkit.backup.load import restore_backup
from devkit.backup.target import resolve_target
from devkit.envfile import read_env_file

from phrases import says

# Exclusive: the previous main builds its own images under the same tags, and this kit builds
# them again.
pytestmark = [pytest.mark.docker, pytest.mark.ansible, pytest.mark.machine]

# The main before the app got a role of its own and Redis stopped running as root.
PREVIOUS_MAIN = "cd75104"
INVOKE = str(Path(sys.executable).with_name("invoke"))
PROJECT = "devkit-test-upgrade"


def kit_setup(kit: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [INVOKE, "--search-root", str(kit), "setup", "--no-vscode"],
        cwd=kit,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )


def wal_of_a_restore(url: str, backup: Path) -> tuple[int, int]:
    """The WAL the kit's restore of BACKUP writes in the cluster at URL (the test's own: nothing
    else writes there meanwhile), and the size of the table `bulk` it loads."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_current_wal_lsn()")
        (start,) = cur.fetchone()
        restore_backup(resolve_target({}, environ={"DATABASE_URL": url}), backup)
        cur.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)::bigint, pg_table_size('bulk')",
            (start,),
        )
        wal, size = cur.fetchone()
    conn.close()
    return wal, size


@pytest.fixture
def previous_kit(tmp_path):
    with kit_at(PREVIOUS_MAIN, tmp_path / "previous-kit") as worktree:
        yield worktree


def test_a_workstation_of_the_previous_main_changes_over_with_its_data(
    previous_kit, tmp_path, free_port, remove_stack, run_devkit
):
    app = tmp_path / "app"
    shutil.copytree(
        previous_kit / "examples" / "sample_app",
        app,
        ignore=shutil.ignore_patterns(".env.local*", "backups", "__pycache__"),
    )
    env = {
        "INVOKE_DEVKIT_PROJECT_NAME": PROJECT,
        "INVOKE_DEVKIT_APP_DIR": str(app),
        "INVOKE_DEVKIT_POSTGRES_PORT": str(free_port()),
        "INVOKE_DEVKIT_REDIS_PORT": str(free_port()),
    }
    try:
        old = kit_setup(previous_kit, env)
        assert old.returncode == 0, old.stdout[-3000:] + old.stderr
        before = read_env_file(app / ".env.local")
        conn = psycopg2.connect(before["DATABASE_URL_SYNC"])
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (True,)  # the state the previous main leaves
            cur.execute(
                "INSERT INTO sample_users (email, username, hashed_password) "
                "SELECT 'u' || g || '@x', 'u' || g, '!' FROM generate_series(1, 50) g"
            )
            cur.execute("CREATE TABLE keepme AS SELECT g AS id FROM generate_series(1, 321) g")
            cur.execute("SELECT md5(string_agg(email, ',' ORDER BY id)) FROM sample_users")
            users = cur.fetchone()
            cur.execute(
                "CREATE TABLE bulk (id int PRIMARY KEY, pad text); INSERT INTO bulk "
                "SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 100000) g"
            )
        conn.close()
        backup = create_backup(
            resolve_target({}, environ={"DATABASE_URL": before["DATABASE_URL_SYNC"]}),
            tmp_path / "backups",
        ).path
        # The previous main's server (wal_level replica) writes a restore's rows twice: into the
        # tables and into the WAL.
        wal, size = wal_of_a_restore(before["DATABASE_URL_SYNC"], backup)
        assert wal > size > 20 * 2**20
        cache = redis.Redis.from_url(before["REDIS_URL"])
        cache.set("session:42", "kept")
        cache.close()

        # As after `git pull`: `devkit setup` in the app's directory, no setting given (today's
        # kit picks a project and ports for a new app; this one's are kept as recorded).
        new = run_devkit("setup", "--no-vscode", cwd=app, timeout=1500)
        assert new.returncode == 0, new.stdout[-3000:] + new.stderr
        # setup says what it changed
        says(new.stdout, "superuser app became postgres", "app is now the app role")
        after = read_env_file(app / ".env.local")
        assert after["PGPASSWORD"] == before["PGPASSWORD"]  # the app keeps its password
        for key in ("DEVKIT_PROJECT_NAME", "PGPORT", "REDIS_PORT", "REDIS_PASSWORD"):
            assert after[key] == before[key], key
        conn = psycopg2.connect(after["DATABASE_URL_SYNC"])
        with conn.cursor() as cur:
            cur.execute("SELECT md5(string_agg(email, ',' ORDER BY id)) FROM sample_users")
            assert cur.fetchone() == users
            cur.execute("SELECT count(*) FROM keepme")
            assert cur.fetchone() == (321,)
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False,)
            cur.execute(
                "SELECT count(*) FROM pg_tables WHERE tableowner <> 'app' AND schemaname = 'public'"
            )
            assert cur.fetchone() == (0,)  # the app owns its tables: migrations still run
            cur.execute("CREATE TABLE after_upgrade (i int)")
        conn.rollback()
        conn.close()
        # Now at minimal: the restore's rows, into tables it emptied in its own transaction,
        # are written once (the tables' files are synced at COMMIT instead).
        wal, size = wal_of_a_restore(after["DATABASE_URL_SYNC"], backup)
        assert after["DEVKIT_PG_WAL_LEVEL"] == "minimal" and wal < size / 10, (wal, size)
        admin = admin_env_file(PROJECT)
        assert stat.S_IMODE(admin.stat().st_mode) == 0o600
        superuser = psycopg2.connect(
            host="127.0.0.1",
            port=int(after["PGPORT"]),
            user="postgres",
            password=read_env_file(admin)["DEVKIT_ADMIN_PASSWORD"],
            dbname=after["PGDATABASE"],
        )
        with superuser.cursor() as cur:
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (True,)
        superuser.close()
        cache = redis.Redis.from_url(after["REDIS_URL"])
        assert cache.get("session:42") == b"kept"
        cache.close()
        top = subprocess.run(
            ["docker", "top", f"{PROJECT}-redis-1", "-o", "pid,uid,comm"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()[1:]  # fmt: skip
        assert all(line.split()[1] != "0" for line in top if "redis-server" in line), top
        again = run_devkit("setup", "--no-vscode", cwd=app, timeout=1500)
        assert again.returncode == 0 and "Ansible: 0 changed" in again.stdout, again.stdout[-2000:]
    finally:
        remove_stack(app / ".env.local", PROJECT)
