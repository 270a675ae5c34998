"""The Windows side of a WSL 2 workstation, asked through WSL's interop (powershell.exe on the
PATH WSL appends): who listens on the stack's ports on Windows. A Windows app connecting to
127.0.0.1:5432 reaches whatever listens there on Windows: in WSL's default NAT mode that must be
wslrelay.exe, which forwards to WSL (localhost forwarding); a PostgreSQL installed on Windows on
the same port silently wins (microsoft/WSL#8353). In mirrored mode nothing on Windows may hold
the port.

What powershell.exe prints for PORT_OWNERS is ConvertTo-Csv's documented format (a quoted
header line, then one quoted line per object; Microsoft's ConvertTo-Csv reference), here with
Get-NetTCPConnection's LocalAddress, LocalPort and OwningProcess and the process's name.
"""

from __future__ import annotations

import contextlib
import csv
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PORT_OWNERS = (
    "Get-NetTCPConnection -State Listen -LocalPort {ports} -ErrorAction SilentlyContinue | "
    "Select-Object LocalAddress,LocalPort,OwningProcess,"
    "@{{Name='Process';Expression={{(Get-Process -Id $_.OwningProcess).ProcessName}}}} | "
    "ConvertTo-Csv -NoTypeInformation"
)
RELAY = "wslrelay"  # WSL's localhost forwarding on Windows (NAT mode)


@dataclass(frozen=True)
class Listener:
    address: str
    port: int
    pid: int
    process: str


def parse_listeners(output: str) -> list[Listener]:
    """PORT_OWNERS's output (ConvertTo-Csv) as listeners; lines it cannot read are skipped."""
    rows = csv.DictReader(line for line in output.splitlines() if line.strip())
    found = []
    for row in rows:
        try:
            found.append(
                Listener(
                    row["LocalAddress"],
                    int(row["LocalPort"]),
                    int(row["OwningProcess"]),
                    row.get("Process") or "?",
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return found


def windows_listeners(ports: list[int], path: str | None = None) -> list[Listener] | None:
    """Who listens on `ports` on Windows; None when Windows cannot be asked (no interop)."""
    powershell = shutil.which("powershell.exe", path=path)
    if powershell is None or not ports:
        return None
    command = PORT_OWNERS.format(ports=",".join(str(port) for port in ports))
    try:
        asked = subprocess.run(
            [powershell, "-NoProfile", "-NonInteractive", "-Command", command],
            capture_output=True, timeout=20, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if asked.returncode != 0:
        return None
    # The console's code page (CP932 on a Japanese Windows): names are ASCII, the rest replaced.
    return parse_listeners(asked.stdout.decode("utf-8", errors="replace"))


def port_intruders(listeners: list[Listener]) -> list[Listener]:
    """In NAT mode, the listeners that take a Windows app's connection away from WSL's port."""
    return [found for found in listeners if found.process.lower() != RELAY]


def windows_profile(path: str | None, drives: Path) -> Path | None:
    """The current Windows user's profile directory as WSL sees it (`%USERPROFILE%`, asked
    through cmd.exe: `C:\\Users\\taro` is /mnt/c/Users/taro); None without interop."""
    cmd = shutil.which("cmd.exe", path=path)
    if cmd is None:
        return None
    try:
        asked = subprocess.run(
            [cmd, "/d", "/c", "echo %USERPROFILE%"], capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    profile = asked.stdout.decode("utf-8", errors="replace").strip()
    if asked.returncode != 0 or len(profile) < 3 or profile[1:3] != ":\\":
        return None
    return drives / profile[0].lower() / profile[3:].replace("\\", "/")


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
