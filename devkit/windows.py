"""The Windows side of a WSL 2 workstation, asked through WSL's interop in one powershell.exe
run (on the PATH WSL appends): the current user's profile, who listens on the stack's ports on
Windows, whether Windows connects to them, where the distribution's virtual disk is, and
Windows' clock.

A Windows app connecting to 127.0.0.1:5432 reaches whatever listens there on Windows: in WSL's
default NAT mode that must be wslrelay.exe, which forwards to WSL (localhost forwarding); a
PostgreSQL installed on Windows on the same port silently wins (microsoft/WSL#8353).

What powershell.exe prints is ConvertTo-Json's output (Microsoft's reference) of the object
FACTS builds; the distribution's BasePath comes from the registry key WSL keeps for each
distribution (HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Lxss\\{id}: DistributionName,
BasePath).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# One statement per line: `powershell.exe -Command -` reads its script from stdin line by line,
# as if typed, and a block left open at a line's end waits for more. ASCII only (stdin is read
# in the console's code page); the output is set to UTF-8 inside the script, so a profile named
# 田中 reaches the kit as UTF-8 whatever the console's code page (CP932 on a Japanese Windows).
FACTS = """
try {{ [Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false }} catch {{ }}
$ports = @({ports})
$listeners = @(Get-NetTCPConnection -State Listen -LocalPort $ports -ErrorAction SilentlyContinue | ForEach-Object {{ [pscustomobject]@{{ address = $_.LocalAddress; port = [int]$_.LocalPort; pid = [int]$_.OwningProcess; process = (Get-Process -Id $_.OwningProcess -ErrorAction SilentlyContinue).ProcessName }} }})
$lxss = Get-ChildItem HKCU:\\Software\\Microsoft\\Windows\\CurrentVersion\\Lxss -ErrorAction SilentlyContinue | Where-Object {{ $_.GetValue('DistributionName') -eq '{distro}' }} | Select-Object -First 1
$reach = @{{}}
foreach ($p in $ports) {{ $c = New-Object Net.Sockets.TcpClient; try {{ $reach["$p"] = $c.ConnectAsync('127.0.0.1', $p).Wait(2000) }} catch {{ $reach["$p"] = $false }} finally {{ $c.Close() }} }}
@{{ profile = $env:USERPROFILE; listeners = $listeners; reach = $reach; basePath = $(if ($lxss) {{ $lxss.GetValue('BasePath') }} else {{ '' }}); now = [DateTimeOffset]::UtcNow.ToUnixTimeSeconds() }} | ConvertTo-Json -Depth 4 -Compress

"""
# Where Windows keeps powershell.exe, for a distribution whose PATH has no Windows directories
# (`[interop] appendWindowsPath = false` in /etc/wsl.conf, common in company WSL guides).
POWERSHELL = "c/Windows/System32/WindowsPowerShell/v1.0/powershell.exe"
RELAY = "wslrelay"  # WSL's localhost forwarding on Windows (NAT mode)
# Docker Desktop's own process, which publishes its containers' ports on Windows when it is the
# engine (the stack's ports are then rightly its).
DESKTOP_BACKEND = "com.docker.backend"


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    pid: int
    process: str


@dataclass(frozen=True)
class WindowsFacts:
    profile: str  # %USERPROFILE%, as Windows writes it (C:\Users\taro)
    listeners: list[Listener] = field(default_factory=list)
    reach: dict[int, bool] = field(default_factory=dict)  # Windows connects to 127.0.0.1:port
    base_path: str = ""  # the directory of the distribution's virtual disk (ext4.vhdx)
    now: float = 0.0  # Windows' clock, seconds since the epoch


def parse_facts(output: str) -> WindowsFacts | None:
    """FACTS's output; None when it is not what FACTS prints."""
    try:
        data = json.loads(output.strip() or "null")
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    listeners = data.get("listeners") or []
    if isinstance(listeners, dict):  # ConvertTo-Json writes a one-element array as its element
        listeners = [listeners]
    found = []
    for item in listeners:
        with contextlib.suppress(AttributeError, KeyError, TypeError, ValueError):
            found.append(
                Listener(
                    str(item["address"]),
                    int(item["port"]),
                    int(item["pid"]),
                    str(item.get("process") or "?"),
                )
            )
    reach = {}
    for port, ok in (data.get("reach") or {}).items():
        with contextlib.suppress(TypeError, ValueError):
            reach[int(port)] = bool(ok)
    try:
        now = float(data.get("now") or 0)
    except (TypeError, ValueError):
        now = 0.0
    return WindowsFacts(
        profile=str(data.get("profile") or ""),
        listeners=found,
        reach=reach,
        base_path=str(data.get("basePath") or ""),
        now=now,
    )


def find_powershell(path: str | None, drives: Path) -> str | None:
    """powershell.exe on the PATH WSL appends, else where Windows keeps it."""
    found = shutil.which("powershell.exe", path=path)
    if found:
        return found
    fixed = drives / POWERSHELL
    return str(fixed) if fixed.is_file() else None


def decode_output(raw: bytes) -> str:
    """What powershell.exe printed: UTF-8, as the script sets it; else (a console that refused
    the setting) the code page of a Japanese Windows, CP932, whose trail bytes include 0x5C,
    a backslash in JSON, in 能 and ソ: read as UTF-8 with replacements, they broke the JSON."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp932", errors="replace")


def windows_facts(
    ports: list[int], distro: str, path: str | None = None, drives: Path = Path("/mnt")
) -> WindowsFacts | None:
    """The Windows side's facts; None when Windows cannot be asked (interop off, or it failed).
    `distro`: a checked WSL distribution name (devkit.vscode_hooks.distro_problem)."""
    powershell = find_powershell(path, drives)
    if powershell is None:
        return None
    script = FACTS.format(ports=",".join(str(int(port)) for port in ports), distro=distro)
    # The script on stdin (`-Command -`): no quoting between WSL's command line, Windows' and
    # PowerShell's, and not -EncodedCommand, which endpoint-security rules flag (SigmaHQ's
    # "Suspicious PowerShell Encoded Command").
    try:
        asked = subprocess.run(
            [powershell, "-NoProfile", "-NonInteractive", "-Command", "-"],
            input=script.encode("ascii"), capture_output=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if asked.returncode != 0:
        return None
    return parse_facts(decode_output(asked.stdout))


def port_intruders(listeners: list[Listener], desktop: bool = False) -> list[Listener]:
    """In NAT mode, the listeners that take a Windows app's connection away from WSL's port:
    all but WSL's relay, and Docker Desktop's backend when Desktop is the engine."""
    ours = {RELAY, DESKTOP_BACKEND} if desktop else {RELAY}
    return [found for found in listeners if found.process.lower() not in ours]


def windows_path(path: str, drives: Path) -> Path | None:
    r"""A Windows path as WSL sees it: C:\Users\taro (also \\?\C:\...) is /mnt/c/Users/taro;
    None for a path on no drive letter."""
    path = path.removeprefix("\\\\?\\")
    if len(path) < 3 or path[1:3] != ":\\":
        return None
    return drives / path[0].lower() / path[3:].replace("\\", "/")


def read_wslconfig(path: Path):
    """The user's .wslconfig as a ConfigParser (empty when missing or unreadable): UTF-8 with
    or without a byte order mark, or UTF-16 as Notepad may save it."""
    import configparser

    parser = configparser.ConfigParser(strict=False, interpolation=None)
    try:
        raw = path.read_bytes()
    except OSError:
        return parser
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = raw.decode("utf-16")
    else:
        text = raw.decode("utf-8-sig", errors="replace")
    with contextlib.suppress(configparser.Error):  # a broken file counts as no settings
        parser.read_string(text)
    return parser


def windows_facts_of(stack_ports: list[int], host=None):
    """The Windows side's facts on WSL 2 (devkit.windows), else None."""
    from devkit.vscode_hooks import default_distro, distro_problem
    from devkit.windows import windows_facts
    from devkit.wsl import THIS_HOST

    host = host or THIS_HOST
    if host.wsl() != 2:
        return None
    distro = default_distro()
    distro = "" if distro_problem(distro) else distro
    return windows_facts(stack_ports, distro, host.path, host.windows_drives)
