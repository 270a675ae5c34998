"""Top-level tasks: setup and the stack's lifecycle (up, down, restart, status, logs)."""

from __future__ import annotations

from invoke import Collection, Exit, task

from devkit.errors import BadArgument
from devkit.services import NAMES
from devkit.tasks._cli import reports_errors, settings_of


def _console():
    import sys

    from rich.console import Console

    # Piped (into a file, grep, a test): lines as wide as they need, not 80 columns.
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 240)


@task(
    help={
        "app-dir": "The app's directory: .env.local is written there (remembered for later tasks)",
        "no-docker-install": "Do not install or start Docker; use the engine already there",
        "no-migrate": "Do not run the app's Alembic migrations (alembic upgrade head)",
        "no-vscode": "Leave the app's .vscode alone (no F5 hooks)",
        "full": "Run the whole playbook even when nothing it manages changed since the last setup",
    }
)
@reports_errors
def setup(c, app_dir=None, no_docker_install=False, no_migrate=False, no_vscode=False, full=False):
    """Set up this machine: Docker, images, PostgreSQL 16, Redis 7, .env.local, migrations."""
    from devkit.paths import server_name
    from devkit.workstation import setup as run_setup

    if server := server_name():
        raise BadArgument(
            f"this is the server {server}: `devkit setup` sets up a workstation, and a server "
            "is set up from the controller",
            f"on the controller: devkit provision --inventory INVENTORY --limit {server}",
        )
    settings = settings_of(c)
    result = run_setup(
        settings,
        app_dir,
        install_docker=not no_docker_install,
        install_vscode=not no_vscode,
        full=full,
    )
    stack = result.stack
    out = _console()
    out.print()
    how = (
        "Ansible: 0 changed; its playbook skipped, as nothing it manages changed since the last "
        "setup: --full runs it"
        if result.skipped
        else f"Ansible: {result.changed} changed"
    )
    out.print(f"[bold green]Ready[/] in {result.seconds:.1f}s ({how})")
    out.print(f"  app      {stack.env_file.parent}  stack={stack.project}")
    if result.chosen:
        out.print(f"  {result.chosen}")
    if result.moved_from:
        out.print(
            f"  moved from {result.moved_from}: its data is kept (the database accepted this "
            ".env.local's password); the stack is labelled with the new directory"
        )
    for name in stack.ports:
        database = f"db={stack.pg_database} user={stack.pg_user}  " if name == "postgres" else ""
        out.print(
            f"  {name:<8} {result.versions[name]:<8} {stack.host}:{stack.ports[name]}  "
            f"{database}image={stack.image(name)}"
        )
    private = "" if result.env_file_problem else "mode 0600; "
    out.print(
        f"  settings for the app: {stack.env_file} ({private}passwords are there, not printed)"
    )
    if result.env_file_problem:
        _warn(out, *result.env_file_problem)
    if result.git_ignore:
        out.print(f"  git ignores .env.local from now on (added to {result.git_ignore})")
    if result.tracked_secret:
        _warn(out, *result.tracked_secret)
    for line in _setup_branches(c, stack):
        out.print(f"  branches: {line}", highlight=False)
    out.print(f"  migrations: {_setup_migrations(c, stack, no_migrate)}")
    if result.chosen and not no_migrate:  # a new stack: in a git worktree, the main one's data
        from devkit.worktrees import clone_main

        clone_main(dict(c.config.devkit), stack, say=lambda line: out.print(f"  {line}"))
    out.print(f"  command: {result.command}")
    if result.slow_drive:
        _warn(out, *result.slow_drive)
    if result.loopback.status != "OK":
        _warn(out, result.loopback.detail, result.loopback.fix)


def _warn(out, cause: str, fix: str) -> None:
    out.print(f"[yellow]warning[/]: {cause}", highlight=False)
    out.print(f"  fix: {fix}", highlight=False)


def _setup_branches(c, stack) -> list[str]:
    """The database follows the git branch from now on (devkit/branches.py): the post-checkout
    hook installed, the branch in place recorded (or switched to, before the migrations run)."""
    from devkit.branch_hook import install
    from devkit.branches import follow_app
    from devkit.git_head import head_of

    head = head_of(stack.app_dir)
    if head is None:
        return []
    said: list[str] = []
    followed = follow_app({**dict(c.config.devkit), "app_dir": str(stack.app_dir)}, said.append)
    if followed is None and not said:
        return []  # off (devkit.branch_databases), or the kit's own sample app
    hook = install(stack.app_dir, head)
    if hook:
        said.append(hook)
    if followed and followed.branch and not said:
        said.append(f"the database in place is branch {followed.branch}'s (devkit branches)")
    return said


def _setup_migrations(c, stack, skip: bool) -> str:
    from devkit.alembic_api import has_migrations, migrate_app

    if skip:
        return "skipped (--no-migrate)"
    if not has_migrations(stack.env_file.parent):
        return f"none (no alembic.ini in {stack.env_file.parent})"
    config = {**dict(c.config.devkit), "app_dir": str(stack.env_file.parent)}
    run = migrate_app(config, "head", "up", stack=stack)
    at = ",".join(run.after) or "base"
    applied = f"{len(run.steps)} applied" + (f", kept first: {run.kept}" if run.kept else "")
    return f"at {at} ({applied if run.steps else 'nothing to apply'})"


@task(
    help={
        "hold": "Once ready, keep running until the databases stop (VS Code's start task: "
        "keeps WSL alive)"
    },
    auto_shortflags=False,  # -h is help's everywhere else
)
@reports_errors
def up(c, hold=False):
    """Start PostgreSQL and Redis; return once both accept authenticated connections."""
    from devkit.branches import follow_app
    from devkit.envfile import load_stack
    from devkit.lifecycle import up as start

    stack = load_stack(c.config.devkit)
    result = start(stack)
    follow_app(c.config.devkit)  # a branch checked out without the hook: its database now
    served = [
        f"{name} {result.versions[name]} on {stack.host}:{port}"
        for name, port in stack.ports.items()
    ]
    print(f"{', '.join(served[:-1])} and {served[-1]} ready ({result.seconds:.2f}s)", flush=True)
    if hold:
        from devkit.lifecycle import hold as hold_until_down

        # The line VS Code's start task waits for (its endsPattern): short and fixed, so that
        # a narrow terminal does not wrap it.
        print("devkit: ready", flush=True)
        print("holding until the databases stop (devkit down, or end this task)", flush=True)
        hold_until_down(stack)
        print("the databases stopped")


@task(
    help={
        "all": "Stop every devkit stack on this machine (`devkit apps` lists them)",
        "service": f"{' or '.join(NAMES)} (default: all)",
    }
)
@reports_errors
def down(c, all_=False, service=None):
    """Stop PostgreSQL and Redis, or one of them; their data (the volumes) is kept."""
    if all_ and service:
        raise BadArgument(
            "--all and --service cannot be combined",
            "--all stops every stack on this machine; --service NAME stops one service of this app",
        )
    if all_:
        from devkit.lifecycle import down_all

        stopped = down_all()
        for project, app_dir in stopped:
            print(f"stopped {project} ({app_dir})")
        print(f"{len(stopped)} stack(s) stopped; data kept" if stopped else "no stack was running")
        return
    from devkit.envfile import load_stack
    from devkit.lifecycle import down as stop

    stop(load_stack(c.config.devkit), service)
    stopped = f"{service} stopped" if service else "stopped"
    print(f"{stopped}; data kept (`devkit up` starts again)")


@task(help={"service": "postgres or redis (default: both)"})
@reports_errors
def restart(c, service=None):
    """Restart one service or both, and wait until they answer again."""
    from devkit.envfile import load_stack
    from devkit.lifecycle import restart as do_restart

    result = do_restart(load_stack(c.config.devkit), service)
    names = [service] if service else list(result.versions)
    print(
        ", ".join(f"{name} {result.versions[name]}" for name in names)
        + f" ready ({result.seconds:.2f}s)"
    )


@task
@reports_errors
def status(c):
    """Show each service: state, health, address, server version, volume size."""
    from rich.table import Table

    from devkit.envfile import load_stack
    from devkit.lifecycle import status as read_status

    stack = load_stack(c.config.devkit)
    rows = read_status(stack)
    table = Table(title="devkit services")
    for column in ("service", "state", "health", "address", "version", "volume"):
        table.add_column(column)
    for row in rows:
        colour = "green" if row.state == "running" else "yellow"
        table.add_row(
            row.service,
            f"[{colour}]{row.state}[/]",
            row.health,
            row.address,
            row.version,
            row.volume_size,
        )
    _console().print(table)
    from devkit.paths import server_name

    if server_name():  # the scheduled backup's last run (devkit/backup/last_run.py)
        from devkit.backup.last_run import describe

        if line := describe(stack.project):
            print(line)
    if any(row.service == "postgres" and row.state == "running" for row in rows):
        from devkit.errors import DevkitError
        from devkit.snapshot_catalog import apart
        from devkit.snapshots import list_snapshots
        from devkit.volumes import human_size

        try:
            snapshots, branches = apart(list_snapshots(stack))
        except DevkitError:
            return
        if snapshots:
            size = human_size(sum(s.on_disk for s in snapshots))
            print(
                f"snapshots: {len(snapshots)} ({size}), newest {snapshots[0].name}: devkit db.snapshots"
            )
        if branches:
            size = human_size(sum(s.on_disk for s in branches))
            print(f"other branches' databases: {len(branches)} ({size}): devkit branches")
    from devkit.diagnosis import check_pulled

    if (pulled := check_pulled(stack)) is not None:
        print(f"data: {pulled.detail}" + (f" ({pulled.fix})" if pulled.fix else ""))


@task(
    help={
        "service": f"{' or '.join(NAMES)} (default: all)",
        "follow": "Keep printing new lines until Ctrl-C",
        "tail": "Only the last N lines of each service",
    }
)
@reports_errors
def logs(c, service=None, follow=False, tail=None):
    """Print the services' logs."""
    from devkit.envfile import load_stack
    from devkit.lifecycle import logs as show_logs

    if tail is not None and not str(tail).isdigit():
        raise BadArgument(f"--tail {tail} is not a number of lines", "--tail N, e.g. --tail 100")
    code = show_logs(
        load_stack(c.config.devkit), service, follow, int(tail) if tail is not None else None
    )
    if code not in (0, 130):
        raise Exit(code=code)


ns = Collection(setup, up, down, restart, status, logs)
