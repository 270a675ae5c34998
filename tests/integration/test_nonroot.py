"""The everyday path as a developer who is not root (issue 26), as on WSL2: a user with the
docker group and sudo, their own copy of the kit and their own app, their stack running while
they work. The suite's other tests run as root, which reads every process's /proc entries and
owns every file: what a user meets was hidden from them."""

import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from devkit.paths import SAMPLE_APP

from phrases import line_with

pytestmark = [pytest.mark.docker, pytest.mark.ansible, pytest.mark.machine(shared=True)]


@pytest.fixture(scope="module")
def dev(developer):
    return developer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def app(dev):
    """The developer's app (the kit's sample app: models, migrations, seed), and the settings
    that keep its stack apart from the other stacks on this machine."""
    app = dev.home / "backend"
    shutil.copytree(
        SAMPLE_APP, app,
        ignore=shutil.ignore_patterns(".env.local*", "backups", "__pycache__", ".vscode"),
    )  # fmt: skip
    shutil.chown(app, dev.user, dev.user)
    for path in app.rglob("*"):
        shutil.chown(path, dev.user, dev.user)
    made = dev.run(["git", "init", "-q"], app)  # the developer's app is a git repository
    assert made.returncode == 0, made.stderr
    return app  # its stack is removed with the developer


@pytest.fixture(scope="module")
def env():
    # `sudo -iu devkit-dev` leaves SUDO_USER set in the user's own shell.
    return {
        "INVOKE_DEVKIT_POSTGRES_PORT": str(free_port()),
        "INVOKE_DEVKIT_REDIS_PORT": str(free_port()),
        "SUDO_USER": "root",
    }


def said(done) -> str:
    return " ".join((done.stdout + done.stderr).split())


def test_setup_as_a_user_keeps_their_files_theirs(dev, app, env):
    """Setup as the user, SUDO_USER set by `sudo -iu` (was: believed, the user's admin password
    and .env.local's backup written under /root, .env.local left to root)."""
    done = dev.devkit("setup", "--no-vscode", cwd=app, env=env, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    env_file = app / ".env.local"
    assert env_file.owner() == dev.user and oct(env_file.stat().st_mode & 0o777) == "0o600"
    project = re.search(r"^DEVKIT_PROJECT_NAME=(.+)$", env_file.read_text(), re.M)[1]
    admin = dev.home / ".local" / "state" / "devkit" / "stacks" / f"{project}.admin.env"
    assert admin.owner() == dev.user and oct(admin.stat().st_mode & 0o777) == "0o600"
    assert not Path(f"/root/.local/state/devkit/stacks/{project}.admin.env").exists()
    # Nothing of the user's (their kit, their app, their home) is left to root: a root-owned
    # __pycache__ in their clone breaks `git clean` and the next upgrade.
    assert dev.owned_by_root(dev.home) == []
    # Its passwords stay out of the app's repository (was: `git add -A` committed them).
    assert "git ignores .env.local from now on" in said(done)
    assert "/.env.local" in (app / ".git" / "info" / "exclude").read_text().splitlines()
    assert ".env.local" not in dev.run(["git", "status", "--porcelain"], app).stdout


def test_up_with_the_stack_running_knows_its_own_ports(dev, app, env):
    """`devkit up` (and F5's start task, which runs it) while the stack runs: the ports are held
    by root's docker-proxy, whose /proc entries a user cannot read (was: "taken by another
    process (run as root to see which)")."""
    for _ in range(2):
        done = dev.devkit("up", cwd=app, env=env)
        assert done.returncode == 0, said(done)
        assert "taken by" not in said(done)


READY = re.compile(r"^devkit: ready$", re.M)  # what VS Code waits for (tasks.json's endsPattern)


def test_f5s_start_task_twice_with_the_stack_running(dev, app, env):
    """What VS Code's preLaunchTask runs (.vscode/devkit-services.sh start: `up --hold`), as the
    user, twice, with no `devkit` on the PATH (the hook takes ~/.local/bin/devkit, which setup
    linked): each reaches the line its problem matcher waits for (was: the port check stopped
    it)."""
    installed = dev.devkit("vscode.install", cwd=app, env=env)
    assert installed.returncode == 0, said(installed)
    for _ in range(2):
        process = subprocess.Popen(
            [shutil.which("runuser"), "-u", dev.user, "--", "env", f"HOME={dev.home}",
             "PATH=/usr/local/bin:/usr/bin:/bin", *(f"{k}={v}" for k, v in env.items()),
             "bash", str(app / ".vscode" / "devkit-services.sh"), "start"],
            cwd=app, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        seen = []
        try:
            for line in process.stdout:
                seen.append(line)
                if READY.search(line) or "error:" in line:
                    break
        finally:
            process.terminate()
            process.wait(30)
        assert READY.search("".join(seen)), "".join(seen)
    assert dev.owned_by_root(app) == []


def test_a_second_setup_and_doctor_with_the_stack_running(dev, app, env):
    again = dev.devkit("setup", "--no-vscode", cwd=app, env=env, timeout=1500)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr
    checked = dev.devkit("doctor", cwd=app, env=env)
    rows = [line.split() for line in checked.stdout.splitlines() if line.startswith("port ")]
    assert len(rows) == 2 and all(row[2] == "OK" for row in rows), checked.stdout
    assert "taken by" not in checked.stdout


def test_reset_its_undo_and_a_failed_restore_that_deletes_no_undo_point(dev, app, env):
    """db.reset keeps `before-reset-…`; a restore that fails afterwards (a plain dump whose
    tables exist already) must not prune it (was: pruned before the restore failed: the
    reset's only undo gone)."""
    keep_one = {**env, "INVOKE_DEVKIT_SNAPSHOT_KEEP": "1"}
    reset = dev.devkit("db.reset", "--yes", cwd=app, env=keep_one)
    assert reset.returncode == 0, said(reset)
    undo = re.search(r"devkit db\.snapshot\.restore (before-reset-\S+) --yes", reset.stdout)[1]
    dump = app / "old.sql"
    dump.write_text(
        "--\n-- PostgreSQL database dump\n--\nCREATE TABLE public.sample_users (id integer);\n"
    )
    shutil.chown(dump, dev.user, dev.user)
    failed = dev.devkit("db.restore", str(dump), "--yes", cwd=app, env=keep_one)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "already exists" in failed.stderr and "--clean" in failed.stderr, failed.stderr
    listed = dev.devkit("db.snapshots", cwd=app, env=env)
    assert re.search(rf"^{undo}\s", listed.stdout, re.M), listed.stdout
    # What the error says to do: the dump into an empty database, the old one kept.
    clean = dev.devkit("db.restore", str(dump), "--clean", "--yes", cwd=app, env=env)
    assert clean.returncode == 0, said(clean)
    line_with(clean.stdout, "devkit db.snapshot.restore before-restore-")
    back = dev.devkit("db.snapshot.restore", undo, "--yes", cwd=app, env=env)
    assert back.returncode == 0, said(back)


def test_backup_restore_snapshot_and_down_as_the_user(dev, app, env):
    made = dev.devkit("db.backup", cwd=app, env=env)
    assert made.returncode == 0, said(made)
    path = Path(made.stdout.strip().splitlines()[-1])
    assert path.owner() == dev.user and path.parent == app / "backups"
    # Backups hold the app's data: their directory keeps itself out of git.
    assert (app / "backups" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert "backups" not in dev.run(["git", "status", "--porcelain"], app).stdout
    # A .env.local git tracks anyway (added by force) fails doctor, with the fix.
    assert dev.run(["git", "add", "-f", ".env.local"], app).returncode == 0
    checked = dev.devkit("doctor", cwd=app, env=env)
    row = next(line for line in checked.stdout.splitlines() if line.startswith("env file"))
    assert "FAIL" in row and "git tracks" in row, checked.stdout
    assert "--cached" in checked.stdout  # the fix column (wrapped in the table)
    assert dev.run(["git", "rm", "-q", "--cached", ".env.local"], app).returncode == 0
    restored = dev.devkit("db.restore", str(path), "--yes", cwd=app, env=env)
    assert restored.returncode == 0, said(restored)
    taken = dev.devkit("db.snapshot", "--name", "mine", cwd=app, env=env)
    assert taken.returncode == 0, said(taken)
    back = dev.devkit("db.snapshot.restore", "mine", "--yes", cwd=app, env=env)
    assert back.returncode == 0, said(back)
    assert dev.owned_by_root(dev.home) == []
    down = dev.devkit("down", cwd=app, env=env)
    assert down.returncode == 0, said(down)
