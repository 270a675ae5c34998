"""doctor's checks of WSL and the Windows side (devkit/diagnosis.py runs them): localhost
forwarding and what stops setup on WSL, the F5 hooks' hold on WSL, Windows' clock, and who
holds the stack's ports on Windows. The Windows facts come from devkit/windows.py, the host's
files from devkit/wsl.py (tests give recorded ones)."""

from __future__ import annotations

from pathlib import Path

from devkit.envfile import Stack
from devkit.findings import FAIL, OK, SKIP, WARN, Check

# Why the Windows side gave no facts: powershell.exe was found neither on the PATH nor where
# Windows keeps it, or it did not answer.
UNASKED = "powershell.exe did not answer: WSL's interop may be off ([interop] in /etc/wsl.conf)"


def _networking_mode(facts, host) -> tuple[Path, str, str]:
    """The current Windows user's .wslconfig, its networkingMode and localhostForwarding."""
    from devkit.windows import read_wslconfig, windows_path

    profile = windows_path(facts.profile, host.windows_drives) or host.windows_drives
    config_file = profile / ".wslconfig"
    config = read_wslconfig(config_file)
    mode = config.get("wsl2", "networkingMode", fallback="nat").strip().lower()
    forwarding = config.get("wsl2", "localhostForwarding", fallback="true").strip().lower()
    return config_file, mode, forwarding


def check_wsl(host=None, facts=None) -> Check:
    """WSL 2: can Windows reach the ports on 127.0.0.1 (localhost forwarding, as the current
    Windows user's .wslconfig sets it)? Before that, what stops setup on WSL
    (devkit.wsl.unready_wsl). `host`: devkit.wsl.HostFiles (this machine's by default; tests
    give recorded files); `facts`: the Windows side's (windows_facts_of)."""
    from devkit.vscode_hooks import default_distro
    from devkit.wsl import THIS_HOST, unready_wsl

    host = host or THIS_HOST
    if host.wsl() == 0:
        return Check("wsl", OK, "Linux, not WSL: nothing to forward")
    if problem := unready_wsl(default_distro(), host):
        return Check("wsl", FAIL, problem.cause, problem.hint)
    if facts is None:
        return Check("wsl", SKIP, f"WSL 2, but Windows cannot be asked ({UNASKED})")
    config_file, mode, forwarding = _networking_mode(facts, host)
    if mode != "mirrored" and forwarding == "false":
        return Check(
            "wsl",
            WARN,
            f"{config_file} turns localhostForwarding off: Windows apps cannot reach 127.0.0.1 ports",
            "set localhostForwarding=true (or networkingMode=mirrored) there, then `wsl --shutdown`",
        )
    if mode == "mirrored":
        return Check(
            "wsl",
            OK,
            "WSL 2 in mirrored networking mode (Windows reaches 127.0.0.1 ports directly; it has "
            "open bugs with Docker's published ports, microsoft/WSL#10494: NAT mode is the safe "
            "default)",
        )
    return Check("wsl", OK, "WSL 2 with localhost forwarding (Windows reaches 127.0.0.1 ports)")


def check_vscode_hooks(app_dir: Path, host=None) -> list[Check]:
    """WSL: the app's F5 hooks must hold WSL up while the app runs (the background start task
    with its windows form, devkit vscode.install); an older kit's return at once, and WSL
    stops an idle distribution, the databases with it, 15 s after F5 (microsoft/WSL#9667)."""
    from devkit.jsonc import JsoncError, entry
    from devkit.wsl import THIS_HOST, read

    host = host or THIS_HOST
    tasks_file = app_dir / ".vscode" / "tasks.json"
    if host.wsl() != 2 or not tasks_file.is_file():
        return []
    try:
        start = entry(read(tasks_file), "tasks", "label", "devkit: start services")
    except JsoncError:
        start = None
    if start is None:
        return []
    held = start.get("isBackground") is True
    windows = "windows" in start or start.get("command") == "wsl.exe"
    if held and windows:
        return [Check("vscode", OK, "F5's start task holds WSL up while the databases run")]
    return [
        Check(
            "vscode",
            WARN,
            f"{tasks_file} has an older kit's start task: F5 from Windows VS Code lets WSL stop "
            "the databases about 15 s later (microsoft/WSL#9667)",
            f"devkit vscode.install --app-dir {app_dir} (or setup)",
        )
    ]


CLOCK_SKEW = 60.0  # seconds


def check_clock(facts, now: float | None = None) -> list[Check]:
    """WSL 2's clock against Windows': after sleep it can lag, and apt then refuses ("Release
    file ... is not valid yet")."""
    import time

    if facts is None or not facts.now:
        return []
    skew = (time.time() if now is None else now) - facts.now
    if abs(skew) <= CLOCK_SKEW:
        return [Check("clock", OK, f"within {abs(skew):.0f} s of Windows' clock")]
    return [
        Check(
            "clock",
            WARN,
            f"WSL's clock is {abs(skew):.0f} s {'behind' if skew < 0 else 'ahead of'} Windows' "
            "(after sleep; apt then says a Release file is not valid yet)",
            "sudo hwclock -s (or in PowerShell: wsl --shutdown, then open the distribution again)",
        )
    ]


def check_windows_ports(stack: Stack, facts, host=None) -> list[Check]:
    """WSL 2: on Windows, each of the stack's ports must be WSL's forwarding (wslrelay, NAT
    mode) or free (mirrored mode: nothing there), and Windows must connect to it; anything else
    holding it there (a PostgreSQL installed on Windows) silently gets the Windows app's
    connections (microsoft/WSL#8353)."""
    from devkit.windows import port_intruders
    from devkit.wsl import THIS_HOST

    host = host or THIS_HOST
    if facts is None:
        return [Check("windows ports", SKIP, f"Windows cannot be asked ({UNASKED})")]
    from devkit.wsl import engines

    # Mirrored mode: WSL's own ports are not Windows listeners at all; anything there is another.
    mirrored = _networking_mode(facts, host)[1] == "mirrored"
    desktop = engines(host).desktop_cli  # Docker Desktop is the engine: its backend publishes
    others = facts.listeners if mirrored else port_intruders(facts.listeners, desktop)
    checks = []
    for service, port in stack.ports.items():
        name = f"windows port {port}"
        taken = [found for found in others if found.port == port]
        if taken:
            holder = taken[0]
            checks.append(
                Check(
                    name,
                    FAIL,
                    f"on Windows, port {port} is held by {holder.process} (pid {holder.pid}, "
                    f"{holder.address}): Windows apps connecting to 127.0.0.1:{port} reach it, "
                    f"not the kit's {service} (microsoft/WSL#8353)",
                    f"stop it on Windows (its service in services.msc, or in PowerShell: "
                    f"Stop-Process -Id {holder.pid}), or give the stack another port: "
                    f"INVOKE_DEVKIT_{service.upper()}_PORT={port + 1} devkit setup",
                )
            )
        elif facts.reach.get(port) is False:
            checks.append(
                Check(
                    name,
                    WARN,
                    f"Windows does not connect to 127.0.0.1:{port} ({service})",
                    "start the stack (devkit up); if it runs, restart WSL's forwarding: "
                    "wsl --shutdown in PowerShell",
                )
            )
        else:
            checks.append(Check(name, OK, f"{service}: Windows connects to WSL's port"))
    return checks
