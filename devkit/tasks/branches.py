"""branches, branches.follow, branches.prune: the app's database per git branch
(devkit/branches.py)."""

from __future__ import annotations

from invoke import Collection, task

from devkit.tasks._cli import confirm, reports_errors


def _stack(c):
    from devkit.envfile import load_stack

    return load_stack(c.config.devkit)


@task(name="list", default=True)
@reports_errors
def list_(c):
    """List the database of each git branch: size, migration, last used, whether the branch exists."""
    from rich.cells import cell_len

    from devkit.branch_catalog import list_branches
    from devkit.branches import follow_app
    from devkit.volumes import human_size

    follow_app(c.config.devkit)
    found = list_branches(_stack(c))
    if not found:
        print("no branch databases (the app is not in git, or devkit.branch_databases is off)")
        return
    for database in found:
        used = "in place" if database.in_place else database.used[:16].replace("T", " ")
        git = {True: "", False: "  (branch deleted: devkit branches.prune)", None: ""}
        # Padded by the cells a terminal gives it (機能/検索: two per character).
        name = database.branch + " " * max(0, 32 - cell_len(database.branch))
        print(
            f"{name} {human_size(database.size):>9}  "
            f"{database.revision or '(none)':<14} {used:<16}{git[database.in_git]}"
        )


@task(
    help={"hook": "Called by the post-checkout hook: quiet during a rebase or a bisect"},
    auto_shortflags=False,  # -h is help's everywhere else
)
@reports_errors
def follow(c, hook=False):
    """Put the checked-out branch's database in place now (the hook, up and database tasks do it)."""
    from devkit.branches import follow_app, follow_checkout

    if hook:
        follow_checkout(c.config.devkit)  # also run without Invoke: devkit/cli.py
    else:
        follow_app(c.config.devkit, strict=True)


@task(
    help={
        "dry-run": "Only list what would be dropped",
        "yes": "Do not ask (required without a terminal)",
    }
)
@reports_errors
def prune(c, dry_run=False, yes=False):
    """Drop the databases of git branches that no longer exist (lists them, then asks)."""
    from devkit import branch_catalog
    from devkit.volumes import human_size

    stack = _stack(c)
    doomed = branch_catalog.gone(stack)
    if not doomed:
        print("every kept database's git branch still exists: nothing to drop")
        return
    for database in doomed:
        print(
            f"{'would drop' if dry_run else 'drop'}: {database.branch}  "
            f"{human_size(database.size)}  last used {database.used[:16].replace('T', ' ')}"
        )
    if dry_run:
        print("Dry run: nothing dropped.")
        return
    confirm(yes, "branches.prune drops databases", f"Drop these {len(doomed)} database(s)?")
    branch_catalog.drop(stack, doomed, print)


ns = Collection("branches", list_, follow, prune)
