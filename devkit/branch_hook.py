"""The post-checkout hook setup installs, so that the database follows `git checkout` at once
(devkit/branches.py; `up` and every database task look at HEAD too, for switches made without
hooks).

One hook per repository, naming every app of it that setup saw (a repository may hold several):
it runs `devkit branches.follow --hook` in each after a branch checkout (git's third argument
is 1; 0 is a file checkout) and never fails the checkout. A hook the repository had is never
overwritten: it is kept beside ours as `post-checkout.devkit-chained` and runs first, its exit
status the checkout's (pre-commit's way with a hook it finds). Hooks kept in the worktree
elsewhere (core.hooksPath: tracked files, as husky keeps them, or a directory shared by every
repository) are not the kit's to change: setup says the line to add there.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from devkit.git_head import Head, git

MARK = "# devkit: the app's database follows the checked-out branch"
APP_LINE = "# devkit app: "
CHAINED = "post-checkout.devkit-chained"


def hooks_dir(top: Path) -> Path | None:
    """Where git runs TOP's hooks from (core.hooksPath respected), None when git cannot say."""
    done = git(top, "rev-parse", "--path-format=absolute", "--git-path", "hooks")
    if done is None or done.returncode != 0 or not done.stdout.strip():
        return None
    return Path(done.stdout.strip())


def _script(devkit: str, apps: list[str]) -> str:
    listed = "\n".join(f"{APP_LINE}{app}" for app in apps)
    quoted = " ".join(shlex.quote(app) for app in apps)
    return f"""#!/bin/sh
{MARK} (devkit/branch_hook.py).
# A post-checkout hook that was here before runs first, kept as {CHAINED}.
{listed}
hooks=$(dirname "$0")
if [ -x "$hooks/{CHAINED}" ]; then
  "$hooks/{CHAINED}" "$@" || exit $?
fi
[ "$3" = 1 ] || exit 0  # a file checkout: no branch changed
devkit={shlex.quote(devkit)}
[ -x "$devkit" ] || exit 0
top=$(pwd)
for app in {quoted}; do
  [ -d "$top/$app" ] && (cd "$top/$app" && "$devkit" branches.follow --hook)
done
exit 0
"""


def _apps_in(text: str) -> list[str]:
    return [line[len(APP_LINE) :] for line in text.splitlines() if line.startswith(APP_LINE)]


def install(app_dir: Path, head: Head) -> str:
    """Install (or update) the hook of the repository HEAD is of, for the app in APP_DIR; what
    was done, in one line ("" when nothing changed)."""
    hooks = hooks_dir(head.top)
    if hooks is None:
        return ""
    app = app_dir.relative_to(head.top).as_posix() or "."
    devkit = str(Path(sys.executable).with_name("devkit"))
    hook = hooks / "post-checkout"
    git_owned = head.common_dir.resolve() in (hooks.resolve(), *hooks.resolve().parents)
    existing = hook.read_text(errors="replace") if hook.is_file() else ""
    ours = MARK in existing
    if not git_owned and not ours:
        return (
            f"git runs the hooks in {hooks} (core.hooksPath): to switch databases on checkout, "
            f"add to its post-checkout: (cd {shlex.quote(app)} && {devkit} branches.follow --hook)"
        )
    apps = _apps_in(existing) if ours else []
    wanted = _script(devkit, sorted({*apps, app}))
    if existing == wanted:
        return ""
    hooks.mkdir(parents=True, exist_ok=True)
    said = f"installed the post-checkout hook in {hooks}"
    if hook.exists() and not ours:
        os.replace(hook, hooks / CHAINED)
        said += f" (the one there runs first, kept as {CHAINED})"
    partial = hooks / ".post-checkout.devkit-partial"
    partial.write_text(wanted)
    partial.chmod(0o755)
    os.replace(partial, hook)
    return said if not ours else ""
