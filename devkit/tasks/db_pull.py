"""db.pull, db.pull.init, db.pull.source: a masked copy of a server's database on the laptop
(devkit/pull/)."""

from __future__ import annotations

import sys

from invoke import Collection, task

from devkit.tasks._cli import confirm, follows_branch, local_stack, reports_errors


@task(
    default=True,
    help={
        "env": "An inventory (staging = inventories/staging) or a host of one",
        "host": "Which of the inventory's servers (default: the first)",
        "yes": "Do not ask (required without a terminal)",
        "vault-password-file": "File holding the inventory's ansible-vault password",
        "ask-vault-pass": "Ask for the inventory's ansible-vault password",
    },
    auto_shortflags=False,
)
@reports_errors
@follows_branch
def pull(c, env, host=None, yes=False, vault_password_file=None, ask_vault_pass=False):
    """Replace the app's data with a masked copy of a server's database (db-pull.yaml's rules)."""
    from devkit.pull.run import pull as pull_copy

    made = pull_copy(
        c.config.devkit,
        env,
        host,
        vault_password_file,
        ask_vault_pass,
        ask=lambda question: confirm(yes, "db.pull replaces the app's data", question),
    )
    result = made.result
    print(
        f"Pulled from {made.host}: {result.tables} tables, {result.rows} rows (rules {made.rules[:12]})"
    )
    print(
        f"snapshot {made.snapshot}{' (replaced)' if made.replaced else ''}: any branch starts from "
        f"it with devkit db.snapshot.restore {made.snapshot}"
    )
    if result.undo():
        print(f"To undo it: {result.undo()}")


@task(
    help={"print": "Print the file instead of writing it (to compare with yours)"},
    auto_shortflags=False,
)
@reports_errors
def init(c, print_=False):
    """Write a first db-pull.yaml: a rule for every column of the app's tables, guessed, for review."""
    from devkit.backup.catalog import app_tables, foreign_keys
    from devkit.backup.session import connect
    from devkit.backup.target import stack_target
    from devkit.pull.guess import first_file
    from devkit.pull.masks import not_null
    from devkit.pull.rules import FILE_NAME

    stack = local_stack(c, "db.pull.init")
    path = stack.app_dir / FILE_NAME
    if path.exists() and not print_:
        from devkit.errors import DataConflict

        raise DataConflict(
            f"{path} exists already",
            "see what init would write: devkit db.pull.init --print",
        )
    conn = connect(stack_target(stack.values))
    try:
        with conn.cursor() as cur:
            tables = {t.qualified: t for t in app_tables(cur)}
            text = first_file(
                tables, foreign_keys(cur), not_null(cur, [t.oid for t in tables.values()])
            )
    finally:
        conn.close()
    if print_:
        sys.stdout.write(text)
        return
    path.write_text(text)
    guessed = sum(line.endswith("# guessed") for line in text.splitlines())
    print(f"wrote {path}: {len(tables)} tables, {guessed} columns guessed personal: review it")


@task(auto_shortflags=False)
@reports_errors
def source(c):
    """On a server: the masked backup of its stack on stdout, for db.pull (the rules on stdin)."""
    from devkit.pull.source import serve

    if sys.stdout.isatty():
        from devkit.errors import BadArgument

        raise BadArgument(
            "db.pull.source writes a backup to stdout, and stdout is a terminal",
            "run devkit db.pull ENV on the laptop: it runs this on the server",
        )
    serve(c.config.devkit, sys.stdin.read(), sys.stdout.buffer)


ns = Collection("pull", pull, init, source)
