"""Which WSL this Linux runs in, from the kernel's release string, one rule for the kit's Python
(setup, doctor) and the docker role (its `wsl_version` filter); and whether a file is on a
Windows drive where chmod does nothing.

Recorded real values (/proc/sys/kernel/osrelease, `uname -r`):
- WSL 1: `4.4.0-19041-Microsoft`, capital M (powersj/whatsthis#10, DMOJ/judge-server#874).
- WSL 2: `4.19.128-microsoft-standard` (powersj/whatsthis#10); newer kernels end in `-WSL2`,
  such as `5.15.153.1-microsoft-standard-WSL2` (microsoft/WSL#423).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devkit.errors import SetupRequired

OSRELEASE = Path("/proc/sys/kernel/osrelease")
MOUNTS = Path("/proc/mounts")


@dataclass(frozen=True)
class HostFiles:
    """Where the kit reads what kind of host this is; tests give recorded copies instead."""

    osrelease: Path = OSRELEASE  # the kernel's release string: which WSL
    mounts: Path = MOUNTS  # the mount table: Windows drives
    wsl_conf: Path = Path("/etc/wsl.conf")  # WSL's per-distribution settings
    systemd: Path = Path("/run/systemd/system")  # exists while systemd runs as PID 1
    windows_drives: Path = Path("/mnt")  # where WSL mounts C:, D:, ...
    desktop_dir: Path = Path("/mnt/wsl/docker-desktop")  # there while Docker Desktop runs
    dpkg_status: Path = Path("/var/lib/dpkg/status")  # the packages installed here
    path: str | None = None  # the PATH `docker` is looked up in (None: this process's)

    def wsl(self) -> int:
        """wsl_version of this host's kernel: 1 or 2, or 0 for a Linux that is not WSL."""
        return wsl_version(read(self.osrelease))


THIS_HOST = HostFiles()


def host_file(name: str) -> str:
    """The path of one of the host files (HostFiles' field `name`), for the roles that look at
    the host they run on: `{{ 'systemd' | host_file }}` (the docker and backup_schedule roles'
    filter)."""
    return str(getattr(THIS_HOST, name))


def read(path: Path) -> str:
    """A host file's text; "" when it is missing or unreadable."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return ""


def wsl_version(osrelease: str) -> int:
    """1 or 2 for WSL 1 or WSL 2; 0 for a Linux that is not WSL."""
    if "Microsoft" in osrelease:  # WSL 1's own kernel string; WSL 2's is lower case
        return 1
    if "microsoft" in osrelease.lower() or "WSL2" in osrelease:
        return 2
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


def unready_wsl(distro: str, host: HostFiles) -> SetupRequired | None:
    """Why the kit cannot set up this WSL as it is, or None: WSL 1 (wsl1_refusal), wsl.conf
    enabling systemd that does not run yet (systemd_pending), Docker Desktop in the way
    (desktop_problem). setup stops on it before it changes anything; doctor fails with it."""
    return (
        wsl1_refusal(read(host.osrelease), distro)
        or systemd_pending(host)
        or desktop_problem(host, distro)
    )


def refuse_unready_wsl(distro: str, host: HostFiles) -> None:
    if (refusal := unready_wsl(distro, host)) is not None:
        raise refusal


# --- Which Docker engine: this distribution's own, or Docker Desktop's -------------------------
# Told apart by evidence, never by /mnt/wsl/docker-desktop alone (it is there in every
# distribution while Desktop runs, integration on or off, and absent while Desktop is stopped).
# Recorded real facts: with WSL integration on, /usr/bin/docker is a link to
# /mnt/wsl/docker-desktop/cli-tools/usr/bin/docker (docker/for-win#6441, #14850); with it off,
# `which docker` finds Desktop's Windows shim under /mnt/c (`/mnt/c/Program Files/Docker/Docker/
# resources/bin/docker`, `/mnt/c/ProgramData/DockerDesktop/version-bin/docker`), which answers
# "The command 'docker' could not be found in this WSL 2 distro. We recommend to activate the
# WSL integration in Docker Desktop settings." (docker/for-win#9824, #12642).
DESKTOP_EXE = "Program Files/Docker/Docker/Docker Desktop.exe"
NATIVE_ENGINES = ("docker.io", "docker-ce", "moby-engine")


@dataclass(frozen=True)
class Engines:
    """What this distribution shows of its Docker engines."""

    docker: str  # where the docker command resolves to ("" when there is none)
    desktop_installed: bool  # Docker Desktop.exe on a Windows drive
    desktop_running: bool  # its shared directory is there
    native: tuple[str, ...]  # engine packages installed in this distribution
    desktop_root: str  # Desktop's shared directory, where its integration links `docker` to
    windows_root: str  # where the Windows drives are mounted

    @property
    def desktop_cli(self) -> bool:
        """`docker` is Desktop's, through its WSL integration."""
        return self.docker.startswith(f"{self.desktop_root}/")

    @property
    def windows_shim(self) -> bool:
        """`docker` is a Windows program (Desktop's shim, found on the PATH WSL appends)."""
        return self.docker.startswith(f"{self.windows_root}/") and not self.desktop_cli


def installed_packages(status: str, names: tuple[str, ...]) -> tuple[str, ...]:
    """Which of `names` dpkg's status file (`status`) records as installed."""
    found, package = [], ""
    for line in status.splitlines():
        if line.startswith("Package: "):
            package = line.split(":", 1)[1].strip()
        elif line.startswith("Status: ") and package in names and line.endswith(" installed"):
            found.append(package)
    return tuple(found)


def engines(host: HostFiles) -> Engines:
    import os
    import shutil

    found = shutil.which("docker", path=host.path)  # None: this process's PATH
    return Engines(
        docker=os.path.realpath(found) if found else "",
        desktop_installed=any(host.windows_drives.glob(f"*/{DESKTOP_EXE}")),
        desktop_running=host.desktop_dir.is_dir(),
        native=installed_packages(read(host.dpkg_status), NATIVE_ENGINES),
        desktop_root=os.path.realpath(host.desktop_dir),
        windows_root=os.path.realpath(host.windows_drives),
    )


def desktop_problem(host: HostFiles, distro: str) -> SetupRequired | None:
    """Why setup must not install or start an engine here because of Docker Desktop, or None.
    Only on WSL."""
    if host.wsl() == 0:
        return None
    seen = engines(host)
    settings = "Docker Desktop > Settings > Resources > WSL integration"
    if seen.desktop_installed and seen.native:
        return SetupRequired(
            f"Docker Desktop is installed on Windows and this distribution has an engine of its "
            f"own ({', '.join(seen.native)}): two engines would share /var/run/docker.sock",
            "keep one: quit and uninstall Docker Desktop (the kit then uses this distribution's "
            f"engine), or remove this one (sudo apt-get remove {' '.join(seen.native)}) and turn "
            f"on {distro} in {settings}",
        )
    if seen.desktop_installed and not seen.desktop_running:
        return SetupRequired(
            "Docker Desktop is installed on Windows but not running (setup would otherwise "
            "install a second engine here)",
            f"start Docker Desktop, check that {distro} is on in {settings}, then run setup again",
        )
    if seen.desktop_running and not seen.desktop_cli and not seen.native:
        shim = f" (`docker` here is its Windows shim, {seen.docker})" if seen.docker else ""
        return SetupRequired(
            f"Docker Desktop runs, but its WSL integration is off for {distro}{shim}",
            f"turn on {distro} in {settings}, Apply & restart, then run setup again",
        )
    return None


# --- /etc/wsl.conf's [boot] section ------------------------------------------------------------
# Without systemd nothing starts dockerd when the distribution boots: the kit adds its command
# to [boot] command (kept beside a command of the user's: commands are joined with ';'). Under
# systemd docker.service starts it, and the kit's command is taken out again: both at once
# break Docker's start (microsoft/WSL#12307). Examples of the section: Microsoft's "Advanced
# settings configuration in WSL" (wsl-config), `[boot]` with `systemd=true` and
# `command = service docker start`.
KIT_BOOT_COMMAND = "service docker start"


def _comment_at(value: str) -> int:
    """Where an inline comment starts in a wsl.conf value (`command = x # note`: WSL drops it),
    outside quotes; len(value) when there is none."""
    quote = ""
    for index, char in enumerate(value):
        if char in "\"'" and quote in ("", char):
            quote = "" if quote else char
        elif char == "#" and not quote:
            return index
    return len(value)


def _boot_entries(text: str) -> dict[str, tuple[int, str]]:
    """[boot]'s keys (lower case) -> (line index, value without quotes or inline comment)."""
    found: dict[str, tuple[int, str]] = {}
    section = ""
    for index, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1].strip().lower()
        elif section == "boot" and "=" in stripped and not stripped.startswith(("#", ";")):
            key, value = stripped.split("=", 1)
            value = value[: _comment_at(value)]
            found[key.strip().lower()] = (index, value.strip().strip('"').strip())
    return found


def systemd_pending(host: HostFiles) -> SetupRequired | None:
    """wsl.conf enables systemd, but it does not run: the distribution was not restarted since
    (WSL reads wsl.conf only when it starts)."""
    if host.wsl() == 0 or host.systemd.is_dir():
        return None
    value = _boot_entries(read(host.wsl_conf)).get("systemd", (0, ""))[1]
    if value.lower() != "true":
        return None
    return SetupRequired(
        f"{host.wsl_conf} enables systemd, but it does not run yet: WSL applies the file "
        "only when the distribution restarts",
        "in PowerShell on Windows: wsl --shutdown; then open the distribution again and run "
        "setup again",
    )


def wsl_conf_boot(text: str, systemd: bool) -> str:
    """/etc/wsl.conf (`text`) as the kit leaves it: without systemd, [boot] command runs the
    kit's KIT_BOOT_COMMAND, after a command of the user's; with systemd, without it. Every
    other line is kept as it was."""
    lines = text.splitlines()
    entries = _boot_entries(text)
    index, value = entries.get("command", (None, ""))
    parts = [part.strip() for part in value.split(";") if part.strip()]
    if systemd:
        parts = [part for part in parts if part != KIT_BOOT_COMMAND]
    elif KIT_BOOT_COMMAND not in parts:
        parts.append(KIT_BOOT_COMMAND)
    if index is not None:
        if parts:
            written = lines[index].split("=", 1)[1]
            comment = written[_comment_at(written) :].strip()  # kept after the command
            quote = '"' if written.strip().startswith('"') else ""
            lines[index] = f"command = {quote}{'; '.join(parts)}{quote}" + (
                f" {comment}" if comment else ""
            )
        else:
            del lines[index]
    elif parts:
        header = next((i for i, line in enumerate(lines) if line.strip().lower() == "[boot]"), None)
        if header is None:
            lines += ([""] if lines and lines[-1].strip() else []) + ["[boot]"]
            header = len(lines) - 1
        lines.insert(header + 1, f"command = {'; '.join(parts)}")
    return "\n".join(lines) + "\n" if lines else ""


def _unescape(field: str) -> str:
    """A /proc/mounts field: a space is written \\040, a backslash \\134."""
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def windows_drive(path: Path, mounts: str) -> tuple[str, bool] | None:
    """The mount point holding `path` when it is a Windows drive, and whether it is mounted
    with DrvFs's `metadata` option (without it, chmod changes nothing: every file stays
    readable by every user of the distribution); None for a Linux filesystem. `mounts`:
    /proc/mounts. A Windows drive is WSL 1's `drvfs`, or WSL 2's `9p` with `aname=drvfs`,
    whose own options follow it after `;`. Recorded real entries: `C: /mnt/c drvfs
    rw,noatime,uid=1000,gid=1000` (without) and `rw,noatime,uid=1000,gid=1000,umask=22,
    fmask=11,metadata,case=off` (with), as `mount -l` shows them in microsoft/WSL#3393, #353
    and #5956; with `virtiofs=true` in .wslconfig, `drvfsC0 on /mnt/c type virtiofs
    (rw,noatime)` (microsoft/WSL#14301): a virtiofs mount of a `drvfs…` share."""
    best: tuple[str, str, set[str], str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point = _unescape(fields[1])
        inside = path == Path(point) or Path(point) in path.parents
        if inside and (best is None or len(point) > len(best[0])):
            options = set(fields[3].replace(";", ",").split(","))
            best = (point, fields[2], options, fields[0])
    if best is None:
        return None
    point, kind, options, source = best
    if (
        kind == "drvfs"
        or (kind == "9p" and "aname=drvfs" in options)
        or (kind == "virtiofs" and source.startswith("drvfs"))
    ):
        return point, "metadata" in options
    return None


def drvfs_without_metadata(path: Path, mounts: str) -> str:
    """windows_drive's mount point when it lacks `metadata`; "" otherwise."""
    found = windows_drive(path, mounts)
    return found[0] if found and not found[1] else ""


def slow_drive_warning(app_dir: Path, mounts: Path = MOUNTS) -> tuple[str, str] | None:
    """The app on a Windows drive: WSL 2 reaches its files over 9p, many times slower than its
    own disk (git, Python's imports, Alembic, file watchers). A cause and a fix, or None."""
    found = windows_drive(app_dir.resolve(), read(mounts))
    if found is None:
        return None
    return (
        f"the app is on the Windows drive {found[0]}: WSL reaches its files over 9p, many times "
        "slower than inside WSL",
        "move it under ~ in WSL (Windows tools and VS Code reach it at "
        "\\\\wsl.localhost\\<distro>\\...), then run setup there",
    )


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
