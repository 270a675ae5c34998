"""Which WSL this Linux runs in, from the kernel's release string, one rule for the kit's Python
(setup, doctor) and the docker role (its `wsl_version` filter); and whether a file is on a
Windows drive where chmod does nothing.

Recorded real values (/proc/sys/kernel/osrelease, `uname -r`):
- WSL 1: `4.4.0-19041-Microsoft`, capital M (powersj/whatsthis#10, DMOJ/judge-server#874).
- WSL 2: `4.19.128-microsoft-standard` (powersj/whatsthis#10); newer kernels end in `-WSL2`,
  such as `5.15.153.1-microsoft-standard-WSL2` (microsoft/WSL#423).
"""

from __future__ import annotations

from pathlib import Path

from devkit.errors import SetupRequired

OSRELEASE = Path("/proc/sys/kernel/osrelease")
MOUNTS = Path("/proc/mounts")


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


def _unescape(field: str) -> str:
    """A /proc/mounts field: a space is written \\040, a backslash \\134."""
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def drvfs_without_metadata(path: Path, mounts: str) -> str:
    """The mount point holding `path` when it is a Windows drive mounted without DrvFs's
    `metadata` option, where chmod changes nothing (every file stays readable by every user of
    the distribution); "" otherwise. `mounts`: /proc/mounts. A Windows drive is WSL 1's
    `drvfs`, or WSL 2's `9p` with `aname=drvfs`, whose own options follow it after `;`.
    Recorded real entries: `C: /mnt/c drvfs rw,noatime,uid=1000,gid=1000` (without) and
    `rw,noatime,uid=1000,gid=1000,umask=22,fmask=11,metadata,case=off` (with), as `mount -l`
    shows them in microsoft/WSL#3393, #353 and #5956."""
    best: tuple[str, str, set[str]] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point = _unescape(fields[1])
        inside = path == Path(point) or Path(point) in path.parents
        if inside and (best is None or len(point) > len(best[0])):
            options = set(fields[3].replace(";", ",").split(","))
            best = (point, fields[2], options)
    if best is None:
        return ""
    point, kind, options = best
    windows_drive = kind == "drvfs" or (kind == "9p" and "aname=drvfs" in options)
    return point if windows_drive and "metadata" not in options else ""


def drvfs_fix(point: str) -> str:
    return (
        f"keep the app inside WSL (under ~, not {point}; also much faster), or add "
        '`options = "metadata"` under [automount] in /etc/wsl.conf, then `wsl --shutdown` '
        "in PowerShell, and run setup again"
    )


def private_file_problem(path: Path, mounts: Path = MOUNTS) -> tuple[str, str] | None:
    """Why `path` (a file that must be 0600) is readable by others, with the fix; None when
    it is not."""
    import stat

    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o077:
        return None
    try:
        point = drvfs_without_metadata(path.resolve(), mounts.read_text())
    except OSError:
        point = ""
    if point:
        return (
            f"{path} is mode {mode:04o}: other users can read its passwords; it is on the "
            f"Windows drive {point}, mounted without `metadata`, where chmod changes nothing",
            drvfs_fix(point),
        )
    return (f"{path} is mode {mode:04o}: other users can read its passwords", f"chmod 600 {path}")
