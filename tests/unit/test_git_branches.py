"""Reading a checkout's HEAD (devkit/git_head.py), the names of kept branch databases
(devkit/branches.py) and the post-checkout hook (devkit/branch_hook.py), on real git
repositories made here (no database)."""

import subprocess
from pathlib import Path

import pytest

from devkit import branch_hook
from devkit.branches import kept_name
from devkit.git_head import head_of
from devkit.snapshot_catalog import NAME

pytestmark = pytest.mark.unit


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=dev@example.com", "-c", "user.name=dev", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    top = tmp_path / "repo"
    (top / "backend").mkdir(parents=True)
    git(top, "init", "-q", "-b", "main")
    (top / "backend" / "alembic.ini").write_text("[alembic]\n")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "one")
    return top


def test_head_names_the_branch_from_a_subdirectory(repo):
    head = head_of(repo / "backend")
    assert (head.top, head.branch, head.commit, head.under_way) == (repo, "main", "", "")
    assert not head.linked_worktree


def test_a_detached_head_names_its_commit(repo):
    git(repo, "checkout", "-q", "--detach")
    head = head_of(repo / "backend")
    assert head.branch == "" and head.commit == git(repo, "rev-parse", "HEAD")
    assert head.describe().startswith("detached HEAD at ")


def test_a_linked_worktree_has_its_own_head_and_the_shared_repository(repo, tmp_path):
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "機能/検索")
    head = head_of(tmp_path / "wt" / "backend")
    assert head.branch == "機能/検索" and head.linked_worktree
    assert head.common_dir == repo / ".git" and head.top == tmp_path / "wt"


def test_a_rebase_under_way_is_seen(repo):
    git(repo, "switch", "-q", "-c", "side")
    (repo / "a.txt").write_text("side\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "side")
    git(repo, "switch", "-q", "main")
    (repo / "a.txt").write_text("main\n")
    git(repo, "add", "a.txt")
    git(repo, "commit", "-q", "-m", "main")
    git(repo, "switch", "-q", "side")
    stopped = subprocess.run(["git", "rebase", "main"], cwd=repo, capture_output=True, check=False)
    assert stopped.returncode != 0  # a conflict: the rebase stops half-way
    assert head_of(repo).under_way == "a rebase" and head_of(repo).branch == ""


def test_a_repository_without_commits_and_a_directory_outside_git(tmp_path):
    (tmp_path / "new").mkdir()
    git(tmp_path / "new", "init", "-q", "-b", "trunk")
    assert head_of(tmp_path / "new").branch == "trunk"
    (tmp_path / "plain").mkdir()
    assert head_of(tmp_path / "plain") is None  # (pytest's tmp_path is outside any repository)


@pytest.mark.parametrize(
    "branch", ["main", "feature/login", "機能/検索", "fix-#12", "a" * 120, "Feature/Login"]
)
def test_kept_names_are_valid_snapshot_names_unique_per_branch(branch):
    name = kept_name(branch)
    assert NAME.fullmatch(name) and len(name) <= 40
    assert kept_name(branch) == name and kept_name(branch + "x") != name
    assert kept_name("feature/login") != kept_name("Feature/Login")


def test_the_hook_keeps_the_repositorys_own_and_lists_each_app(repo):
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "post-checkout").write_text("#!/bin/sh\necho own\n")
    (hooks / "post-checkout").chmod(0o755)
    (repo / "api").mkdir()
    said = branch_hook.install(repo / "backend", head_of(repo / "backend"))
    assert "devkit-chained" in said
    assert (hooks / "post-checkout.devkit-chained").read_text() == "#!/bin/sh\necho own\n"
    assert branch_hook.install(repo / "backend", head_of(repo)) == ""  # again: nothing to do
    branch_hook.install(repo / "api", head_of(repo))
    text = (hooks / "post-checkout").read_text()
    assert branch_hook.MARK in text and "for app in api backend; do" in text
    assert (hooks / "post-checkout.devkit-chained").read_text() == "#!/bin/sh\necho own\n"
    assert (hooks / "post-checkout").stat().st_mode & 0o111


def test_the_hook_runs_the_own_one_first_and_ignores_file_checkouts(repo, tmp_path):
    hooks = repo / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    log = tmp_path / "log"
    (hooks / "post-checkout").write_text(f'#!/bin/sh\necho "own $3" >> {log}\n')
    (hooks / "post-checkout").chmod(0o755)
    branch_hook.install(repo / "backend", head_of(repo))
    git(repo, "switch", "-q", "-c", "other")  # devkit finds no stack there: says so, exits 0
    git(repo, "checkout", "main", "--", "backend/alembic.ini")
    assert log.read_text().splitlines() == ["own 1", "own 0"]


def test_hooks_kept_outside_git_are_left_alone_with_the_line_to_add(repo):
    (repo / ".husky").mkdir()
    (repo / ".husky" / "post-checkout").write_text("#!/bin/sh\nnpx something\n")
    git(repo, "config", "core.hooksPath", ".husky")
    said = branch_hook.install(repo / "backend", head_of(repo))
    assert "core.hooksPath" in said and "branches.follow --hook" in said
    assert (repo / ".husky" / "post-checkout").read_text() == "#!/bin/sh\nnpx something\n"
    assert not (repo / ".husky" / "post-checkout.devkit-chained").exists()


def test_a_revision_is_known_by_the_file_that_defines_it_not_one_that_names_it(tmp_path):
    from devkit.branches import _mentioned

    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/migrations\n")
    (versions / "b_second.py").write_text('revision: str = "bbbb"\ndown_revision = "aaaa"\n')
    assert _mentioned(tmp_path, ["bbbb"])
    assert not _mentioned(tmp_path, ["aaaa"])  # only named as a parent: its own file is gone
    assert not _mentioned(tmp_path / "nowhere", ["bbbb"])  # no alembic.ini: Alembic decides


def _hook_imports(cwd: Path, env: dict[str, str]) -> set[str]:
    """The modules `devkit branches.follow --hook` imports (python -X importtime's report)."""
    import os
    import sys

    from devkit.paths import KIT_ROOT

    environ = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "devkit.cli", "branches.follow", "--hook"],
        cwd=cwd, capture_output=True, text=True, check=True,
        env={**environ, "PYTHONPATH": str(KIT_ROOT), **env},
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {line.rsplit("|", 1)[-1].strip() for line in lines}


def test_the_hook_runs_without_invoke_when_the_settings_are_all_defaults(repo):
    """The hook runs at every branch checkout: with no setting given, it skips Invoke's start-up
    (devkit.cli.follow_early); a setting in the environment goes through Invoke, which reads it."""
    from devkit.cli import CONFIG_FILES

    if any(path.exists() for path in CONFIG_FILES):
        pytest.skip(f"a config file of Invoke's is on this machine: {CONFIG_FILES}")
    assert "invoke" not in _hook_imports(repo / "backend", {})
    assert "invoke" in _hook_imports(repo / "backend", {"INVOKE_DEVKIT_BRANCH_KEEP": "3"})
