"""`devkit doctor`: diagnose the workstation (devkit/diagnosis.py), optionally repair."""

from __future__ import annotations

from invoke import task

from devkit.errors import ChecksFailed
from devkit.tasks._cli import confirm, of_app, reports_errors

_STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim"}


def _print(checks) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("check", "", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:
        style = _STYLE[check.status]
        table.add_row(check.name, f"[{style}]{check.status}[/]", check.detail, check.fix)
    Console(highlight=False, soft_wrap=False, width=200).print(table)


@task(
    help={
        "repair": "Fix what can be fixed safely: the server's password to .env.local's, containers",
        "yes": "Repair without asking (required without a terminal)",
    }
)
@reports_errors
def doctor(c, repair=False, yes=False):
    """Check Docker, Compose, WSL2, ports, containers, disk, .env.local, logins, migrations."""
    from devkit.diagnosis import run_checks
    from devkit.findings import FAIL

    checks = run_checks(c.config.devkit)
    _print(checks)
    failed = [check for check in checks if check.status == FAIL]
    if repair:
        _repair(c, failed, yes)
        checks = run_checks(c.config.devkit)
        print("\nAfter the repair:")
        _print(checks)
        failed = [check for check in checks if check.status == FAIL]
    if failed:
        raise ChecksFailed(
            f"{len(failed)} check(s) failed: {', '.join(check.name for check in failed)}",
            "each failed check names its fix above; `devkit doctor --repair` repairs what it can",
        )
    print("\nAll checks passed.")


def _repair(c, failed, yes: bool) -> None:
    from devkit.diagnosis import repair_postgres_password
    from devkit.envfile import load_stack
    from devkit.lifecycle import up

    names = {check.name for check in failed}
    if not names & {"postgres login", "redis login", "postgres container", "redis container"}:
        print("\nNothing here that --repair fixes.")
        return
    stack = load_stack(c.config.devkit)
    if "postgres login" in names:
        confirm(
            yes,
            "repair changes the database user's password",
            f"Set the password of {stack.pg_user} on the server of "
            f"{of_app(stack, 'the stack')} to the one in {stack.env_file}?",
        )
        repair_postgres_password(stack)
        print(f"\nrepaired: {stack.pg_user}'s password on the server is .env.local's again")
    if names & {"redis login", "postgres container", "redis container"}:
        up(stack)  # recreates a container whose settings differ from .env.local, starts the rest
        print("repaired: the containers run with .env.local's settings")
