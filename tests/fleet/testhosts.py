"""The CI test hosts of inventories/ci: containers that behave like fresh Debian servers.

Each is built from the kit's offline Debian base (devkit/debian:bookworm) with sshd and python3
(tests/fleet/Dockerfile), reached over SSH on 127.0.0.1:<port>, and able to run a Docker engine
of its own (the site playbook installs it). This engine refuses --privileged (one capability is
outside its bounding set); a nested engine whose containers run needs all other capabilities,
no seccomp or AppArmor profile, the host's cgroup namespace with /sys/fs/cgroup writable, and a
volume for /var/lib/docker (overlayfs does not stack on the container's own overlay root).

    python3 tests/fleet/testhosts.py up      # build the image, start both hosts, wait for SSH
    python3 tests/fleet/testhosts.py down    # remove the hosts and their Docker volumes
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parents[2]
IMAGE = "devkit/testhost:bookworm"
BASE = "devkit/debian:bookworm"
# Name and SSH port of each host, as inventories/ci/hosts.yml has them.
HOSTS = {"devkit-ci-1": 2221, "devkit-ci-2": 2222}
KEY = KIT_ROOT / ".devkit" / "ci-hosts" / "id_ed25519"
NESTED_DOCKER = [
    "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
    "--cgroupns", "host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
]  # fmt: skip


def _kit_mounts() -> list[str]:
    """The controller's kit, read-only at its own path, so that a host can also stand for a
    workstation (test_site.py runs `devkit setup` in one); its .devkit/ (state the kit writes)
    is the host's own. With the Python the kit's virtualenv was made from, unless that is the
    system's, which the hosts have (Debian 12's python3, as here)."""
    mounts = ["-v", f"{KIT_ROOT}:{KIT_ROOT}:ro", "--tmpfs", f"{KIT_ROOT}/.devkit"]
    base = Path(sys.base_prefix)
    if base != Path("/usr"):
        mounts += ["-v", f"{base}:{base}:ro"]
    return mounts


def _docker(*args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=False, **kwargs
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:2])} failed: {result.stderr.strip()}")
    return result


def _key() -> str:
    if not KEY.exists():
        KEY.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "devkit-ci", "-f", str(KEY)],
            check=True,
        )
    return KEY.with_suffix(".pub").read_text().strip()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_for_ssh(name: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    command = [
        "ssh", "-i", str(KEY), "-p", str(port), "-o", "BatchMode=yes", "-o", "ConnectTimeout=2",
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "root@127.0.0.1", "python3 -c 'print(1)'",
    ]  # fmt: skip
    while time.monotonic() < deadline:
        if subprocess.run(command, capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.5)
    logs = _docker("logs", "--tail", "20", name, check=False)
    raise RuntimeError(f"{name} does not answer SSH on 127.0.0.1:{port}: {logs.stderr.strip()}")


def _ssh_client() -> None:
    """Ansible and testinfra reach the hosts with OpenSSH's client."""
    if shutil.which("ssh") and shutil.which("ssh-keygen"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "openssh-client"], check=True, env=env)


def wait_for_ssh(name: str) -> None:
    """Until the host answers SSH again (after `docker start`)."""
    _wait_for_ssh(name, HOSTS[name])


def up() -> None:
    """Build the image, start the hosts fresh (an old one is replaced), wait until SSH answers."""
    _ssh_client()
    down()
    if _docker("image", "inspect", BASE, check=False).returncode != 0:
        raise RuntimeError(f"no {BASE} image: run `invoke images.build` (or setup) first")
    _docker("build", "-q", "-t", IMAGE, "--build-arg", f"BASE={BASE}", str(Path(__file__).parent))
    public_key = _key()
    for name, port in HOSTS.items():
        if not _port_free(port):
            raise RuntimeError(f"127.0.0.1:{port} is taken: free it for {name} (inventories/ci)")
        _docker(
            "run", "-d", "--name", name, "--hostname", name, "-e", f"AUTHORIZED_KEY={public_key}",
            "-p", f"127.0.0.1:{port}:22", *NESTED_DOCKER, "-v", f"{name}-docker:/var/lib/docker",
            *_kit_mounts(), "--label", "io.devkit.ci-host=1", IMAGE,
        )  # fmt: skip
    for name, port in HOSTS.items():
        _wait_for_ssh(name, port)


def down() -> None:
    """Remove the hosts and the volumes holding their Docker data."""
    for name in HOSTS:
        _docker("rm", "-f", "-v", name, check=False)
        _docker("volume", "rm", "-f", f"{name}-docker", check=False)


if __name__ == "__main__":
    {"up": up, "down": down}[sys.argv[1] if len(sys.argv) > 1 else "up"]()
