"""verify and provision: testinfra against a host or an inventory; the playbooks on servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from invoke import Exit, task

from devkit.paths import ANSIBLE_CFG, KIT_ROOT
from devkit.tasks._cli import reports_errors


def _inventory(path: str) -> Path:
    inventory = Path(path).expanduser()
    if not inventory.is_absolute() and not inventory.exists():
        inventory = KIT_ROOT / inventory
    if not inventory.exists():
        raise Exit(
            f"error: no inventory at {path}\n  fix: pass --inventory inventories/<name> (see inventories/)",
            code=2,
        )
    return inventory.resolve()


@task(
    help={
        "inventory": "An Ansible inventory: check every host of it (default: this machine)",
        "limit": "Only this host (or pattern) of the inventory",
    }
)
@reports_errors
def verify(c, inventory=None, limit=None):
    """Check a provisioned host with testinfra (tests/infra): daemon, containers healthy, ports on
    loopback, authenticated query and PING, .env.local private. Per-host results."""
    from devkit.state import resolve_app_dir

    command = [
        sys.executable, "-m", "pytest", str(KIT_ROOT / "tests" / "infra"), "-v", "-p", "no:cacheprovider",
        "--deployment=host", f"--devkit-project={c.config.devkit.project_name}",
        f"--devkit-app-dir={resolve_app_dir(c.config.devkit.app_dir)}",
    ]  # fmt: skip
    if inventory:
        command += [
            f"--ansible-inventory={_inventory(inventory)}",
            f"--hosts=ansible://{limit or 'all'}",
        ]
    elif limit:
        raise Exit("error: --limit needs --inventory\n  fix: add --inventory PATH", code=2)
    # testinfra calls ansible-inventory and ansible from the kit's virtualenv, with its config.
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
    }
    code = subprocess.run(command, cwd=KIT_ROOT, env=env, check=False).returncode
    if code:
        raise Exit(code=code)
