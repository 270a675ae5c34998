"""The stack's ports: where they are published, whether they are free, and who holds one when
it is not (read from /proc, Linux only)."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from devkit.errors import PortInUse

LISTEN = "0A"


def port_free(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def listening_inodes(port: int, proc: Path = Path("/proc")) -> set[str]:
    """Socket inodes listening on `port` (any address), from /proc/net/tcp and tcp6."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == LISTEN and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def port_holder(port: int, proc: Path = Path("/proc")) -> tuple[int, str] | None:
    """(pid, command name) of a process listening on `port`, when this user may see it."""
    targets = {f"socket:[{inode}]" for inode in listening_inodes(port, proc)}
    if not targets:
        return None
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            for fd in (pid_dir / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(pid_dir.name), (pid_dir / "comm").read_text().strip()
        except (PermissionError, FileNotFoundError, ProcessLookupError):
            continue
    return None


def container_publishing(port: int) -> str | None:
    """Name of the running container that publishes `port`, if Docker answers."""
    try:
        out = subprocess.run(
            ["docker", "ps", "--filter", f"publish={port}", "--format", "{{.Names}}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out[0] if out else None


def describe_holder(port: int) -> tuple[str, str | None]:
    """A phrase naming what holds `port`, and the container's name when it is a container."""
    holder = port_holder(port)
    if holder is None:
        return "another process (run as root to see which)", None
    pid, name = holder
    if name in ("docker-proxy", "dockerd", "rootlesskit"):
        container = container_publishing(port)
        if container:
            return f"the container {container}", container
    return f"{name} (pid {pid})", None


def published_ports(values: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """Where each service is published, per .env.local's values (or those about to be written)."""
    address = values["DEVKIT_BIND_ADDRESS"]
    return {
        "postgres": (address, int(values["PGPORT"])),
        "redis": (address, int(values["REDIS_PORT"])),
    }


@dataclass(frozen=True)
class PortState:
    service: str
    address: str
    port: int
    holder: str  # "" when free; else what holds it (the project's own container is fine)
    conflict: PortInUse | None  # held by anything but the project's own container


def port_states(ports: dict[str, tuple[str, int]], project: str) -> list[PortState]:
    """The one port check (setup, up, doctor): per service, free, the project's own, or taken."""
    states = []
    for service, (address, port) in ports.items():
        if port_free(address, port):
            states.append(PortState(service, address, port, "", None))
            continue
        holder, container = describe_holder(port)
        conflict = None
        if not (container and container.startswith(f"{project}-{service}-")):
            setting = f"{service}_port"
            conflict = PortInUse(
                f"port {port} on {address} (for {service}) is taken by {holder}",
                f"stop it, or pick another port: INVOKE_DEVKIT_{setting.upper()}={port + 1} devkit setup "
                f"(or devkit.{setting} in invoke.yaml)",
            )
        states.append(PortState(service, address, port, holder, conflict))
    return states


def check_ports(ports: dict[str, tuple[str, int]], project: str) -> None:
    """PortInUse when a port is held by anything but this project's own container."""
    for state in port_states(ports, project):
        if state.conflict:
            raise state.conflict
