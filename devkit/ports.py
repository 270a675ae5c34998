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


# What listens for a published port of a container (rootless Docker's included).
_DOCKER_PROCESSES = ("docker-proxy", "dockerd", "rootlesskit")


def container_publishing(port: int) -> tuple[str, str] | None:
    """(name, the devkit app directory it runs for or "") of the running container that
    publishes `port`, if Docker answers."""
    try:
        out = subprocess.run(
            ["docker", "ps", "--filter", f"publish={port}",
             "--format", '{{.Names}}\t{{.Label "io.devkit.app-dir"}}'],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.splitlines()  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    if not out:
        return None
    name, _, app_dir = out[0].partition("\t")
    return name, app_dir


def describe_holder(port: int) -> tuple[str, str | None, str]:
    """A phrase naming what holds `port`, the container's name when it is a container, and how
    to stop it.
    Docker is asked whenever /proc does not name a process of another kind: a user who is not
    root cannot read the root-owned docker-proxy's entries there, and the stack's own container
    must still be known as its own."""
    holder = port_holder(port)
    if holder is not None and holder[1] not in _DOCKER_PROCESSES:
        return f"{holder[1]} (pid {holder[0]})", None, f"stop {holder[1]}"
    found = container_publishing(port)
    if found:
        name, app_dir = found
        if app_dir:
            return (
                f"the container {name} (the stack of {app_dir})",
                name,
                f"stop that app's stack (cd {app_dir} && devkit down)",
            )
        return f"the container {name}", name, f"stop it (docker stop {name})"
    if holder is not None:
        return f"{holder[1]} (pid {holder[0]})", None, f"stop {holder[1]}"
    return (
        "another process",
        None,
        f"see which (sudo ss -ltnp 'sport = :{port}') and stop it",
    )


def published_ports(values: Mapping[str, str]) -> dict[str, tuple[str, int]]:
    """Where each service is published, per .env.local's values (or those about to be written)."""
    from devkit.services import SERVICES

    address = values["DEVKIT_BIND_ADDRESS"]
    return {name: (address, int(values[s.port_key])) for name, s in SERVICES.items()}


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
        holder, container, stop = describe_holder(port)
        conflict = None
        if not (container and container.startswith(f"{project}-{service}-")):
            setting = f"{service}_port"
            conflict = PortInUse(
                f"port {port} on {address} (for {service}) is taken by {holder}",
                f"{stop}, or give this app another port: "
                f"INVOKE_DEVKIT_{setting.upper()}={port + 1} devkit setup "
                f"(or devkit.{setting} in invoke.yaml)",
            )
        states.append(PortState(service, address, port, holder, conflict))
    return states


def check_ports(ports: dict[str, tuple[str, int]], project: str) -> None:
    """PortInUse when a port is held by anything but this project's own container."""
    for state in port_states(ports, project):
        if state.conflict:
            raise state.conflict
