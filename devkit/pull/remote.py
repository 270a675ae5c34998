"""Reaching a server's kit the way provision reaches the host: the inventory's own connection
variables (ansible-inventory reads them, the vault opened as provision opens it), then `ssh`
with them, so that the database stays unpublished on the server and the bytes stream (an
Ansible module's output is one JSON document held in memory).

Read: ansible_host, ansible_port, ansible_user, ansible_ssh_private_key_file (relative to the
kit, as Ansible runs there), ansible_ssh_common_args and ansible_ssh_extra_args. A user other
than root runs the server's kit through `sudo -n` (provision's `become`).
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devkit.errors import BadArgument, DevkitError
from devkit.paths import KIT_ROOT

CONNECT_TIMEOUT = 10  # seconds: a host down is said within this


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    port: int | None
    user: str
    key_file: str
    ssh_args: tuple[str, ...]

    def ssh(self, *command: str) -> list[str]:
        """The ssh command line running COMMAND (words) on the host."""
        argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.key_file:
            argv += ["-i", self.key_file]
        argv += [*self.ssh_args, f"{self.user}@{self.address}" if self.user else self.address]
        sudo = ["sudo", "-n", "-H"] if self.user and self.user != "root" else []
        return [*argv, "--", shlex.join([*sudo, *command])]


def start(command: list[str], out: int) -> subprocess.Popen:
    """COMMAND (Host.ssh's) started, its output to the file descriptor OUT (closed here), the
    rules still to be written to its stdin: the server's kit reads them before anything else."""
    try:
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.PIPE)
    finally:
        os.close(out)


def valid_command(command: object) -> bool:
    """COMMAND, as a pull's record keeps it, is one Host.ssh made."""
    return (
        isinstance(command, list)
        and len(command) > 3
        and all(isinstance(word, str) for word in command)
        and command[0] == "ssh"
        and command[-2] == "--"
        and command[-1].endswith("devkit db.pull.source")
    )


def stamp(inventory: Path) -> list[list]:
    """The inventory's files as they are (name, size, modification time): every file under an
    inventory directory, or an inventory file and the group_vars and host_vars beside it."""
    if inventory.is_dir():
        root, tops = inventory, [inventory]
    else:
        root = inventory.parent
        tops = [inventory, root / "group_vars", root / "host_vars"]
    found = []
    for top in tops:
        walked = os.walk(top) if top.is_dir() else [(str(top.parent), [], [top.name])]
        for directory, _, files in walked:
            for name in files:
                path = os.path.join(directory, name)
                try:
                    info = os.stat(path)
                except OSError:
                    continue
                found.append([os.path.relpath(path, root), info.st_size, info.st_mtime_ns])
    return sorted(found)


def _template(name: str, variable: str, value: object) -> None:
    if isinstance(value, str) and "{{" in value:
        raise BadArgument(
            f"{name}'s {variable} is a template ({value}): db.pull reads the inventory's values "
            "as they are",
            f"give {name} a plain {variable} in the inventory",
        )


def hosts(inventory: Path, shown: str, env: dict[str, str]) -> dict[str, Host]:
    """The inventory's servers (the `servers` group, as provision), by name."""
    from devkit.inventory import listed, members

    groups = listed(inventory, shown, env)
    variables = groups.pop("_meta", {}).get("hostvars", {})
    found = {}
    for name in sorted(members(groups, "servers")):
        given = variables.get(name, {})
        for variable in ("ansible_host", "ansible_user", "ansible_port"):
            _template(name, variable, given.get(variable))
        key = str(given.get("ansible_ssh_private_key_file") or "")
        if key and not Path(key).expanduser().is_absolute():
            key = str(KIT_ROOT / key)
        args = []
        for variable in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
            args += shlex.split(str(given.get(variable) or ""))
        found[name] = Host(
            name,
            str(given.get("ansible_host") or name),
            int(given["ansible_port"]) if given.get("ansible_port") else None,
            str(given.get("ansible_user") or ""),
            str(Path(key).expanduser()) if key else "",
            tuple(args),
        )
    return found


class RemoteFailed(DevkitError):
    """The server's side of a pull failed (its kit said why, or the host could not be reached)."""


def explain(host: Host, returncode: int, stderr: str, inventory: str) -> RemoteFailed:
    """The server's failure as one cause and a fix: its kit's own lines when it printed them."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    provision = f"devkit provision --inventory {inventory} --limit {host.name}"
    if returncode == 255 and not any(line.startswith("error:") for line in lines):
        last = lines[-1] if lines else "ssh failed"
        return RemoteFailed(
            f"cannot reach {host.name} over SSH ({last})",
            "check that the host is up and the inventory's address, port, user and key "
            f"(ssh {shlex.join(host.ssh()[1:-2])})",
        )
    text = " ".join(lines)
    if returncode == 127 or "command not found" in text or "No such file or directory" in text:
        return RemoteFailed(
            f"{host.name} has no devkit command (the kit is not installed there)", provision
        )
    if "No idea what 'db.pull.source' is" in text:
        return RemoteFailed(f"the kit on {host.name} is older than db.pull", provision)
    if "sudo:" in text and "password" in text:
        return RemoteFailed(
            f"{host.name}'s user {host.user} cannot run the kit through sudo without a password",
            "let the user run sudo without a password (as provision's become does), or connect as root",
        )
    cause = next((line[len("error:") :].strip() for line in lines if line.startswith("error:")), "")
    fix = next((line[len("fix:") :].strip() for line in lines if line.startswith("fix:")), "")
    if cause:
        return RemoteFailed(f"{host.name}: {cause}", fix or provision)
    return RemoteFailed(
        f"{host.name}: the pull failed on the server (exit {returncode}: {(lines or ['no message'])[-1][:300]})",
        "look on the host: ssh to it and run devkit doctor",
    )
