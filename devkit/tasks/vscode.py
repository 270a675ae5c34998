"""vscode.install: the F5 hooks (role `vscode`) into an app's .vscode, on their own."""

from __future__ import annotations

from pathlib import Path

from invoke import Collection, task

from devkit.errors import BadArgument
from devkit.tasks._cli import reports_errors


@task(
    help={
        "app-dir": "The app's directory (default: the app of the working directory, else the last one set up)",
        "host": "both (default): tasks for VS Code in Linux/WSL and on Windows (through wsl.exe); linux or windows: one only (default: devkit.vscode_host)",
        "distro": "WSL distribution the Windows tasks enter (default: devkit.vscode_wsl_distro, else WSL's default distribution)",
        "auto-start": "Also start the services when the folder opens (default: devkit.vscode_auto_start)",
        "dry-run": "Show what would change (a diff); write nothing",
    },
    auto_shortflags=False,  # -h is help's everywhere else
)
@reports_errors
def install(c, app_dir=None, host=None, distro=None, auto_start=False, dry_run=False):
    """Merge the kit's tasks and launch entries into the app's .vscode (comments kept, backups)."""
    from devkit.app import kit_wrote, resolve_app_dir
    from devkit.errors import SetupRequired
    from devkit.paths import ENV_FILE_NAME, LOCAL_INVENTORY, PLAYBOOKS
    from devkit.playbook import run_playbook
    from devkit.vscode_hooks import HOSTS, distro_problem, role_vars
    from devkit.workstation import invoking_user

    settings = c.config.devkit
    host = host or settings.vscode_host
    distro = distro or settings.vscode_wsl_distro
    auto_start = auto_start or bool(settings.vscode_auto_start)
    if host not in HOSTS:
        raise BadArgument(f"unknown host {host!r}", "use --host both, linux or windows")
    if distro and (problem := distro_problem(distro)):
        raise BadArgument(
            problem,
            "name the distribution as `wsl -l -q` lists it: --distro Ubuntu (or devkit.vscode_wsl_distro)",
        )
    target = (
        Path(app_dir).expanduser().resolve()
        if app_dir
        else resolve_app_dir(c.config.devkit.app_dir)
    )
    if not target.is_dir():
        raise BadArgument(f"app directory {target} does not exist", "pass --app-dir PATH")
    if not kit_wrote(target / ENV_FILE_NAME):
        # The hooks start the app's stack: without one they would fail at every F5.
        raise SetupRequired(
            f"{target} is not set up: it has no .env.local written by the kit (no stack to start)",
            f"run `devkit setup --app-dir {target}`: it sets the app up and installs these hooks",
        )
    variables = role_vars(target, invoking_user(), host, distro, auto_start)
    result = run_playbook(
        PLAYBOOKS / "vscode.yml",
        LOCAL_INVENTORY,
        variables,
        echo=dry_run,
        args=("--check", "--diff") if dry_run else (),
    )
    if dry_run:
        print(f"Dry run: nothing written ({result.changed} file(s) would change).")
        return
    state = "updated" if result.changed else "already up to date"
    print(f"VS Code hooks in {target / '.vscode'}: {state} ({result.changed} changed)")
    print('F5 with "devkit: Python (databases started)" starts PostgreSQL and Redis first.')


ns = Collection("vscode", install)
