"""The database follows the git branch (devkit/branches.py), on a real git repository whose app
(in a subdirectory, as the kit's own sample app is) is set up as a user does it: the hook setup
installs, switches made without it, rebases, names git allows, a deleted branch, the budget, a
switch killed half-way, and a worktree with its own stack.

The branches add their own migrations and rows; every check reads the real databases and Redis.
The tests run in order on one repository (the suite runs a file on one worker: --dist loadfile).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest
import redis

from devkit.envfile import read_env_file
from devkit.paths import SAMPLE_APP, state_dir

from phrases import line_with

pytestmark = [pytest.mark.docker, pytest.mark.ansible, pytest.mark.machine(shared=True)]

INITIAL = "c1104acd2fa6"
NICK = "a1a1a1a1a1a1"
MIGRATION = f'''"""nick"""
import sqlalchemy as sa
from alembic import op

revision = "{NICK}"
down_revision = "{INITIAL}"


def upgrade():
    op.add_column("sample_users", sa.Column("nick", sa.Text()))


def downgrade():
    op.drop_column("sample_users", "nick")
'''


def environ() -> dict[str, str]:
    """The user's environment: none of the suite's INVOKE_DEVKIT_* settings (the run's own state
    directory stays: tests/conftest.py)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_DEVKIT_")}


class Repo:
    def __init__(self, top: Path):
        self.top = top
        self.app = top / "backend"

    def git(self, *args: str, env: dict | None = None, check: bool = True):
        done = subprocess.run(
            ["git", "-c", "user.email=dev@example.com", "-c", "user.name=dev", *args],
            cwd=self.app, capture_output=True, text=True, env={**environ(), **(env or {})},
            timeout=120, check=False,
        )  # fmt: skip
        if check:
            assert done.returncode == 0, done.stdout + done.stderr
        return done

    def said(self, *args: str, **kwargs) -> str:
        """What a git command printed (its hook's lines among it)."""
        done = self.git(*args, **kwargs)
        return done.stdout + done.stderr

    @property
    def values(self) -> dict[str, str]:
        return read_env_file(self.app / ".env.local")

    def sql(self, query: str) -> list[tuple]:
        from tests.conftest import sql

        return sql(self.values["DATABASE_URL_SYNC"], query)

    def users(self) -> list[str]:
        return [row[0] for row in self.sql("SELECT username FROM sample_users ORDER BY id")]

    def add_user(self, name: str) -> None:
        self.sql(
            "INSERT INTO sample_users (username, email, hashed_password) "
            f"VALUES ('{name}', '{name}@example.com', 'x')"
        )

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.values["REDIS_URL"], socket_timeout=5)

    def revision(self) -> str:
        return self.sql("SELECT version_num FROM alembic_version")[0][0]

    def current(self) -> str:
        state = state_dir() / "branches" / f"{self.values['DEVKIT_PROJECT_NAME']}.json"
        return json.loads(state.read_text()).get("current", "")


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A git repository with the sample app in backend/ and a post-checkout hook of its own,
    set up with `devkit setup`; its stack (and a worktree's) removed after."""
    from tests.conftest import devkit, remove_app_stack

    top = tmp_path_factory.mktemp("branches") / "repo"
    shutil.copytree(
        SAMPLE_APP, top / "backend",
        ignore=shutil.ignore_patterns(".env.local", ".vscode", "backups", "__pycache__"),
    )  # fmt: skip
    made = Repo(top)
    made.git("-C", str(top), "init", "-q", "-b", "main")
    hook = top / ".git" / "hooks" / "post-checkout"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text('#!/bin/sh\necho "own hook $3" >> "$(git rev-parse --git-dir)/own-hook.log"\n')
    hook.chmod(0o755)
    made.git("add", "-A")
    made.git("commit", "-q", "-m", "the app")
    try:
        done = devkit("setup", "--no-vscode", cwd=made.app, env={}, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
        made.setup_said = done.stdout
        yield made
    finally:
        for app in (made.app, top.parent / "wt" / "backend"):
            remove_app_stack(app)


def test_setup_records_the_branch_and_chains_the_apps_own_hook(repo):
    line_with(repo.setup_said, "branches:", "branch main")
    line_with(repo.setup_said, "post-checkout", "devkit-chained")
    hooks = repo.top / ".git" / "hooks"
    assert "own hook" in (hooks / "post-checkout.devkit-chained").read_text()
    assert repo.current() == "main"
    repo.git("switch", "-q", "-c", "scratch")
    repo.git("switch", "-q", "main")
    assert (repo.top / ".git" / "own-hook.log").read_text().splitlines()[-2:] == [
        "own hook 1",
        "own hook 1",
    ]  # the app's own hook still runs, first, on every checkout
    repo.git("branch", "-q", "-D", "scratch")


def test_each_branch_has_its_own_database_and_redis_keys(repo):
    repo.add_user("on-main")
    repo.redis().set("where", "main")
    said = repo.said("switch", "-c", "feature-a")
    line_with(said, "feature-a", "new database", "main")
    (repo.app / "migrations" / "versions" / f"{NICK}_nick.py").write_text(MIGRATION)
    repo.git("add", "-A")
    repo.git("commit", "-q", "-m", "nick")
    from tests.conftest import devkit

    assert devkit("db.migrate", "--no-backup", cwd=repo.app).returncode == 0
    repo.add_user("on-a")
    repo.redis().set("where", "feature-a")

    said = repo.said("switch", "main")
    line_with(said, "branch main", "in place")
    assert repo.users() == ["on-main"]
    assert repo.revision() == INITIAL  # the base is never migrated by the feature branch
    assert repo.redis().get("where") == b"main"

    repo.said("switch", "feature-a")
    assert repo.users() == ["on-main", "on-a"]
    assert repo.revision() == NICK
    assert repo.redis().get("where") == b"feature-a"
    # The database keeps its name, port and password: .env.local never changes.
    assert repo.values["DATABASE_URL_SYNC"].endswith("/app_db")
    # status names main's database, kept aside, as a branch's, not as a snapshot.
    status = devkit("status", cwd=repo.app).stdout
    line_with(status, "other branches' databases:", "devkit branches")
    assert not re.search(r"^snapshots:.*branch-", status, re.MULTILINE), status


def test_a_switch_made_without_the_hook_is_caught_by_a_database_task_and_by_up(repo):
    from tests.conftest import devkit

    repo.git("-c", "core.hooksPath=/dev/null", "switch", "-q", "main")
    assert repo.current() == "feature-a"  # no hook ran
    current = devkit("db.current", cwd=repo.app)
    assert current.returncode == 0, current.stderr
    line_with(current.stderr, "branch main", "in place")
    assert INITIAL in current.stdout and repo.users() == ["on-main"]

    repo.git("-c", "core.hooksPath=/dev/null", "switch", "-q", "feature-a")
    up = devkit("up", cwd=repo.app)
    assert up.returncode == 0, up.stderr
    line_with(up.stdout, "branch feature-a", "in place")
    assert repo.revision() == NICK


def test_a_rebase_and_a_file_checkout_switch_nothing(repo):
    repo.git("switch", "-q", "main")
    (repo.app / "notes.txt").write_text("main moves on\n")
    repo.git("add", "notes.txt")
    repo.git("commit", "-q", "-m", "notes")
    repo.git("switch", "-q", "feature-a")
    rebased = repo.said("rebase", "main")
    assert "branch " not in rebased and "database" not in rebased, rebased
    assert repo.current() == "feature-a" and repo.revision() == NICK
    restored = repo.said("checkout", "main", "--", "notes.txt")
    assert "database" not in restored and repo.current() == "feature-a"


def test_a_kept_database_at_a_migration_its_branch_lost_is_named_with_the_fix(repo):
    repo.git("switch", "-q", "-c", "drop-nick")
    repo.git("rm", "-q", f"migrations/versions/{NICK}_nick.py")
    repo.git("commit", "-q", "-m", "the nick migration goes (a rebase dropped it)")
    repo.git("switch", "-q", "main")
    said = repo.said("switch", "drop-nick")
    line_with(said, "warning:", "drop-nick", NICK, "do not have")
    line_with(said, "fix:")
    assert repo.revision() == NICK  # named, not changed
    repo.git("switch", "-q", "feature-a")


def test_branch_names_git_allows_and_a_detached_head(repo):
    for name, base in (("機能/検索", "feature-a"), ("feature/x_y-z", "機能/検索")):
        said = repo.said("switch", "-c", name)
        line_with(said, f"branch {name}", "new database", f"copied from branch {base}'s")
        assert repo.current() == name and repo.revision() == NICK
    head = repo.git("rev-parse", "HEAD").stdout.strip()
    said = repo.said("checkout", "--detach", "HEAD")
    line_with(said, f"detached HEAD at {head[:12]}", "stays", "feature/x_y-z")
    repo.git("switch", "-q", "feature-a")
    assert repo.current() == "feature-a"


def test_a_new_branch_starts_from_branch_base_a_branch_or_a_snapshot(repo):
    """devkit.branch_base names a branch (its kept database is copied, not the one in place) or a
    snapshot (db.pull's pulled-ENV: every new branch starts from the pulled data)."""
    from tests.conftest import devkit

    assert repo.current() == "feature-a" and repo.users() == ["on-main", "on-a"]
    said = repo.said("switch", "-c", "from-main", env={"INVOKE_DEVKIT_BRANCH_BASE": "main"})
    line_with(said, "branch from-main", "copied from branch main's")
    assert repo.users() == ["on-main"] and repo.revision() == NICK  # main's data, migrated
    repo.add_user("seeded")
    made = devkit("db.snapshot", "--name", "pulled-seed", cwd=repo.app)
    assert made.returncode == 0, made.stdout + made.stderr
    repo.git("switch", "-q", "feature-a")
    said = repo.said("switch", "-c", "from-seed", env={"INVOKE_DEVKIT_BRANCH_BASE": "pulled-seed"})
    line_with(said, "branch from-seed", "copied from snapshot pulled-seed's")
    assert repo.users() == ["on-main", "seeded"]
    repo.git("switch", "-q", "feature-a")
    assert repo.users() == ["on-main", "on-a"]  # the branch left kept its own
    for branch in ("from-main", "from-seed"):
        repo.git("branch", "-q", "-D", branch)
    pruned = devkit("branches.prune", "--yes", cwd=repo.app)
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert devkit("db.snapshot.drop", "pulled-seed", "--yes", cwd=repo.app).returncode == 0


def test_the_database_of_a_deleted_branch_is_listed_and_pruned_after_asking(repo):
    from tests.conftest import devkit

    repo.git("branch", "-q", "-D", "機能/検索")
    listed = devkit("branches", cwd=repo.app)
    assert listed.returncode == 0, listed.stderr
    line_with(listed.stdout, "機能/検索", "deleted")
    line_with(listed.stdout, "feature-a", "in place")
    refused = devkit("branches.prune", cwd=repo.app)  # no terminal to ask on
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "機能/検索" in devkit("branches", cwd=repo.app).stdout
    dry = devkit("branches.prune", "--dry-run", cwd=repo.app)
    line_with(dry.stdout, "would drop", "機能/検索")
    done = devkit("branches.prune", "--yes", cwd=repo.app)
    assert done.returncode == 0, done.stderr
    line_with(done.stdout, "dropped", "機能/検索")
    after = devkit("branches", cwd=repo.app).stdout
    assert "機能/検索" not in after and "feature/x_y-z" in after and "main" in after


def test_beyond_branch_keep_or_max_mb_the_least_recently_used_go_never_the_base(repo):
    keep_one = {"INVOKE_DEVKIT_BRANCH_KEEP": "1"}
    repo.said("switch", "-c", "b1")
    said = repo.said("switch", "-c", "b2", env=keep_one)
    # Kept: main (the base, never dropped), feature/x_y-z (older), feature-a, b1 (newest).
    line_with(said, "branch_keep", "1")
    line_with(said, "dropped", "feature/x_y-z")
    line_with(said, "dropped", "feature-a")
    from tests.conftest import devkit

    listed = devkit("branches", cwd=repo.app).stdout
    assert [line.split()[0] for line in listed.splitlines()] == ["b2", "b1", "main"], listed
    # A size limit: the least recently used go first until the rest fit (main's alone does not).
    said = repo.said(
        "switch",
        "-c",
        "b3",
        env={"INVOKE_DEVKIT_BRANCH_KEEP": "0", "INVOKE_DEVKIT_BRANCH_MAX_MB": "1"},
    )
    line_with(said, "branch_max_mb", "1")
    assert said.index("of branch b1") < said.index("of branch b2"), said  # b1 was used first
    listed = devkit("branches", cwd=repo.app).stdout
    assert [line.split()[0] for line in listed.splitlines()] == ["b3", "main"], listed
    repo.said("switch", "main")
    assert repo.users() == ["on-main"]


def test_two_switches_at_once_take_turns_and_switch_once(repo):
    repo.git("-c", "core.hooksPath=/dev/null", "switch", "-q", "b3")
    from tests.conftest import DEVKIT

    both = [
        subprocess.Popen(
            [DEVKIT, "branches.follow"],
            cwd=repo.app,
            env=environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    said = [process.communicate(timeout=120)[0] for process in both]
    assert [process.returncode for process in both] == [0, 0], said
    assert sum("branch b3: its database is in place" in text for text in said) == 1, said
    assert repo.current() == "b3" and repo.users() == ["on-main", "on-a"]
    repo.said("switch", "main")
    assert repo.users() == ["on-main"]


KILL_AT = """
import os, signal, sys
from devkit import branches, snapshots
from devkit.envfile import load_stack
from devkit.settings.table import DEFAULTS

def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "before":
    snapshots.closed = killed  # before the transaction that swaps the databases
else:
    branches._finish = killed  # after it: Redis's keys and the state not yet done
stack = load_stack({**DEFAULTS, "app_dir": sys.argv[2]})
branches.switch(stack, sys.argv[3])
"""


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_switch_killed_half_way_is_put_right_by_the_next_command(repo, when):
    from tests.conftest import devkit

    branch = f"killed-{when}"
    repo.git("-c", "core.hooksPath=/dev/null", "switch", "-q", "-c", branch)
    repo.redis().set("where", "main")
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT, when, str(repo.app), branch],
        cwd=repo.app, capture_output=True, text=True, env=environ(), timeout=120, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    put_right = devkit("db.current", cwd=repo.app)
    assert put_right.returncode == 0, put_right.stdout + put_right.stderr
    if when == "before":
        line_with(put_right.stderr, "interrupted before it changed anything")
    else:
        line_with(put_right.stderr, "finished the switch", branch)
    assert repo.current() == branch
    assert repo.users() == ["on-main"] and repo.redis().get("where") == b"main"
    listed = devkit("branches", cwd=repo.app).stdout
    line_with(listed, "main", f"{datetime.now(UTC):%Y-%m-%d}")  # kept, with its last use
    repo.git("switch", "-q", "main")
    assert repo.users() == ["on-main"]


def test_a_worktree_gets_a_stack_of_its_own_cloned_from_the_main_worktree(repo):
    from tests.conftest import devkit

    worktree = repo.top.parent / "wt"
    added = repo.said("worktree", "add", str(worktree), "b1")
    line_with(added, "no stack yet", "devkit setup")
    app = worktree / "backend"
    # The developer copies the main worktree's .env.local over: a copy, given its own stack.
    shutil.copy(repo.app / ".env.local", app / ".env.local")
    done = devkit("setup", "--no-vscode", cwd=app, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    line_with(done.stdout, "a copy of", "worktree")
    line_with(done.stdout, "cloned", str(repo.app))
    own = read_env_file(app / ".env.local")
    assert own["DEVKIT_PROJECT_NAME"] != repo.values["DEVKIT_PROJECT_NAME"]
    assert own["PGPORT"] != repo.values["PGPORT"] and own["PGPASSWORD"] != repo.values["PGPASSWORD"]
    conn = psycopg2.connect(own["DATABASE_URL_SYNC"], connect_timeout=5)
    with conn.cursor() as cur:
        cur.execute("SELECT username FROM sample_users ORDER BY id")
        assert [row[0] for row in cur.fetchall()] == ["on-main"]
    conn.close()
    assert repo.users() == ["on-main"]  # the main worktree's stack as it was
