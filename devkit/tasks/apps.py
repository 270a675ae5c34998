"""apps: every devkit stack on this machine, whichever app or checkout set it up."""

from __future__ import annotations

from invoke import task

from devkit.tasks._cli import reports_errors

WIDE = 120  # columns below which the table would fold the app's path


@task
@reports_errors
def apps(c):
    """List every devkit stack on this machine, from Docker's labels.

    Per stack: app directory, project, state, ports, versions, volume size, last backup."""
    from rich.table import Table

    from devkit.stacks import app_rows
    from devkit.tasks.stack import _console

    rows = app_rows(str(c.config.devkit.backup_dir or ""))
    out = _console()
    if not rows:
        out.print(
            "no devkit stack on this machine (`devkit setup` in an app's directory makes one)"
        )
        return
    if out.width < WIDE:
        # An 80-column terminal folded a path over five lines: one block per stack instead.
        out.print(f"devkit stacks on this machine ({len(rows)})")
        for row in rows:
            colour = "green" if row.state == "running" else "yellow"
            out.print(f"\n[bold]{row.app_dir}[/]", highlight=False, soft_wrap=True)
            out.print(
                f"  {row.project}  [{colour}]{row.state}[/]  ports {row.ports}\n"
                f"  {row.versions}  volumes {row.volume_size}  last backup {row.last_backup}",
                highlight=False,
            )
            if row.note:
                out.print(f"  [yellow]note[/]: {row.note}", highlight=False)
        return
    table = Table(title=f"devkit stacks on this machine ({len(rows)})")
    for column in ("app", "project", "state", "ports", "versions", "volumes", "last backup"):
        table.add_column(column, overflow="fold")
    for row in rows:
        colour = "green" if row.state == "running" else "yellow"
        table.add_row(
            row.app_dir, row.project, f"[{colour}]{row.state}[/]", row.ports, row.versions,
            row.volume_size, row.last_backup,
        )  # fmt: skip
    out.print(table)
    for row in rows:
        if row.note:
            out.print(f"[yellow]note[/]: {row.project}: {row.note}")
