"""`invoke setup`: provision this machine through playbooks/dev.yml, then wait for the stack."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devkit.diagnosis import Check, check_loopback_publishing
from devkit.envfile import Stack, env_values, load_stack, read_env_file
from devkit.errors import SetupRequired
from devkit.paths import COMPOSE_DIR, ENV_FILE_NAME, KIT_ROOT, LOCAL_INVENTORY, PLAYBOOKS
from devkit.playbook import run_playbook
from devkit.ports import check_ports, published_ports
from devkit.settings.model import Settings
from devkit.state import record_app_dir
from devkit.volumes import volume_conflict, volume_owner
from devkit.vscode_hooks import role_vars


@dataclass(frozen=True)
class SetupResult:
    stack: Stack
    versions: dict[str, str]
    changed: int
    seconds: float
    loopback: Check  # whether 127.0.0.1 ports stay on this machine with this engine


def invoking_user() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def playbook_vars(
    settings: Settings,
    app_dir: Path,
    existing: dict[str, str],
    install_docker: bool,
    install_vscode: bool = True,
) -> dict:
    env_file = app_dir / ENV_FILE_NAME
    user = invoking_user()
    return {
        **role_vars(
            app_dir,
            user,
            settings.vscode_host,
            settings.vscode_wsl_distro,
            settings.vscode_auto_start,
        ),
        "devkit_vscode": install_vscode,
        "devkit_install_docker": install_docker,
        "docker_users": [user],
        "images_source": settings.images_source,
        "stack_project_src": str(COMPOSE_DIR),
        "stack_kit_dir": str(KIT_ROOT),
        "stack_kit_python": sys.executable,
        "stack_env_file": str(env_file),
        "stack_env_owner": user,
        "stack_env": env_values(settings, existing),
    }


def setup(
    settings: Settings,
    app_dir_flag: str | None,
    install_docker: bool,
    echo: bool = True,
    install_vscode: bool = True,
) -> SetupResult:
    started = time.monotonic()
    if app_dir_flag:
        settings = settings.model_copy(
            update={"app_dir": str(Path(app_dir_flag).expanduser().resolve())}
        )
    app_dir = settings.resolved_app_dir()
    if not app_dir.is_dir():
        raise SetupRequired(
            f"app directory {app_dir} does not exist", "create it, or pass --app-dir PATH"
        )
    existing = read_env_file(app_dir / ENV_FILE_NAME)
    variables = playbook_vars(settings, app_dir, existing, install_docker, install_vscode)
    env = variables["stack_env"]
    project = env["DEVKIT_PROJECT_NAME"]
    conflict = volume_conflict(
        project, volume_owner(project), str(app_dir), had_password="PGPASSWORD" in existing
    )
    if conflict:
        raise conflict
    check_ports(published_ports(env), project)
    result = run_playbook(PLAYBOOKS / "dev.yml", LOCAL_INVENTORY, variables, echo=echo)
    if app_dir_flag:
        record_app_dir(app_dir)

    from devkit.readiness import wait_ready

    stack = load_stack(settings.model_dump())
    versions = wait_ready(stack, settings.ready_timeout)
    engine = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return SetupResult(
        stack=stack,
        versions=versions,
        changed=result.changed,
        seconds=time.monotonic() - started,
        loopback=check_loopback_publishing(engine, settings.bind_address),
    )
