"""Which WSL this Linux runs in, from the kernel's release string, one rule for the kit's Python
(setup, doctor) and the docker role (its `wsl_version` filter).

Recorded real values (/proc/sys/kernel/osrelease, `uname -r`):
- WSL 1: `4.4.0-19041-Microsoft`, capital M (powersj/whatsthis#10, DMOJ/judge-server#874).
- WSL 2: `4.19.128-microsoft-standard` (powersj/whatsthis#10); newer kernels end in `-WSL2`,
  such as `5.15.153.1-microsoft-standard-WSL2` (microsoft/WSL#423).
"""

from __future__ import annotations

from pathlib import Path

from devkit.errors import SetupRequired

OSRELEASE = Path("/proc/sys/kernel/osrelease")


def wsl_version(osrelease: str) -> int:
    """1 or 2 for WSL 1 or WSL 2; 0 for a Linux that is not WSL."""
    if "Microsoft" in osrelease:  # WSL 1's own kernel string; WSL 2's is lower case
        return 1
    if "microsoft" in osrelease.lower() or "WSL2" in osrelease:
        return 2
    return 0


def running_wsl_version(osrelease: Path = OSRELEASE) -> int:
    try:
        return wsl_version(osrelease.read_text())
    except OSError:
        return 0


def wsl1_refusal(osrelease: str, distro: str) -> SetupRequired | None:
    """Why setup stops on WSL 1 (its kernel cannot run the Docker engine), or None."""
    if wsl_version(osrelease) != 1:
        return None
    return SetupRequired(
        f"this is WSL 1 (kernel {osrelease.strip()}), which cannot run the Docker engine",
        f"in PowerShell on Windows: wsl --set-version {distro} 2 (keeps your files), "
        "then run setup again",
    )


def refuse_wsl1(distro: str, osrelease: Path = OSRELEASE) -> None:
    """Raise wsl1_refusal's error on WSL 1 (`osrelease`: the kernel's release file)."""
    try:
        text = osrelease.read_text()
    except OSError:
        return
    refusal = wsl1_refusal(text, distro)
    if refusal is not None:
        raise refusal
