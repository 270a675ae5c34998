"""The VS Code hooks (role `vscode`): variables for the role, and the WSL distribution."""

from __future__ import annotations

import os
from pathlib import Path

from devkit.paths import KIT_ROOT
from devkit.settings.table import DISTRO_PATTERN, SETTINGS

HOSTS = SETTINGS["vscode_host"].choices


def distro_problem(name: str) -> str:
    """Why `name` is not a WSL distribution name; "" when it is one."""
    import re

    if re.fullmatch(DISTRO_PATTERN, name):
        return ""
    return (
        f"{name!r} is not a WSL distribution name (letters, digits, '.', '_', '-', not first; "
        "at most 64)"
    )


def default_distro() -> str:
    """The WSL distribution this shell runs in (WSL sets WSL_DISTRO_NAME), else Ubuntu."""
    return os.environ.get("WSL_DISTRO_NAME") or "Ubuntu"


def backup_dir(app_dir: Path, owner: str) -> Path:
    """Where the previous tasks.json and launch.json of the app in APP_DIR are kept when the kit
    changes them: OWNER's, outside the app's tree (a copy inside was an untracked file of the
    app's repository), one directory per app (its name and a hash of its path)."""
    import hashlib
    import pwd

    tag = hashlib.sha256(str(app_dir).encode()).hexdigest()[:6]
    from devkit.paths import state_dir

    home = Path(pwd.getpwnam(owner).pw_dir)
    return state_dir(home) / "vscode-backups" / f"{app_dir.name}-{tag}"


def role_vars(
    app_dir: Path,
    owner: str,
    host: str = "both",
    distro: str | None = None,
    auto_start: bool = False,
) -> dict:
    return {
        "vscode_app_dir": str(app_dir),
        "vscode_backup_dir": str(backup_dir(app_dir, owner)),
        "vscode_kit_dir": str(KIT_ROOT),
        "vscode_host": host,
        # Named only when chosen: else wsl.exe enters WSL's default distribution, and the file
        # is the same on every machine.
        "vscode_wsl_distro": distro or "",
        "vscode_auto_start": auto_start,
        "vscode_owner": owner,
    }
