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


def role_vars(
    app_dir: Path,
    owner: str,
    host: str = "both",
    distro: str | None = None,
    auto_start: bool = False,
) -> dict:
    return {
        "vscode_app_dir": str(app_dir),
        "vscode_kit_dir": str(KIT_ROOT),
        "vscode_host": host,
        "vscode_wsl_distro": distro or default_distro(),
        "vscode_auto_start": auto_start,
        "vscode_owner": owner,
    }
