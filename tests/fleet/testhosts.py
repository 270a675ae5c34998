"""The CI test hosts of inventories/ci: containers that behave like fresh Debian servers, one
of each kind the kit meets: devkit-ci-1 without an init system (sshd is its process, as on WSL2
without systemd), devkit-ci-2 with systemd 252 as PID 1 (most servers).

Each is built from the kit's offline Debian base (devkit/debian:bookworm) with sshd and python3
(tests/fleet/Dockerfile, one target per kind), reached over SSH on 127.0.0.1:<port>, and able to
run a Docker engine of its own (the site playbook installs it). This engine refuses --privileged
(one capability is outside its bounding set); a nested engine whose containers run needs all
other capabilities, no seccomp or AppArmor profile, the host's cgroup namespace with
/sys/fs/cgroup writable, and a volume for /var/lib/docker (overlayfs does not stack on the
container's own overlay root). /run and /run/lock are tmpfs on both, as systemd needs them and
as on a real host; systemd as PID 1 also needs `container=docker` (systemd's
CONTAINER_INTERFACE) and stops on SIGRTMIN+3 (the image's STOPSIGNAL). A restart of a host's
container is its reboot.

    python3 tests/fleet/testhosts.py up      # build the image, start both hosts, wait for SSH
    python3 tests/fleet/testhosts.py down    # remove the hosts and their Docker volumes

A third host, devkit-ci-arm64 (inventories/ci-arm64), is a Raspberry Pi's system: Debian bookworm
arm64, the plain kind, run under qemu-user on this machine (its base is the one `devkit
images.build --arch arm64` makes, which registers the emulator). tests/fleet/test_arm64.py
starts and removes it (`up-arm64`, `down-arm64`), apart from the other two.
"""

from __future__ import annotations

import contextlib
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
# Name and SSH port of each host, as inventories/ci/hosts.yml has them, and its kind.
PLAIN, SYSTEMD = "devkit-ci-1", "devkit-ci-2"
HOSTS = {PLAIN: 2221, SYSTEMD: 2222}
KINDS = {PLAIN: "plain", SYSTEMD: "systemd"}
# Every test host carries it; nothing without it is ever removed.
LABEL = "io.devkit.ci-host"
# The arm64 host: its name, port and base.
ARM64, ARM64_PORT, ARM64_BASE = "devkit-ci-arm64", 2223, "devkit/debian:bookworm-arm64"
# /run is a tmpfs on every host, as on a real one: a reboot starts it empty (no stale pid files).
RUN = ["--tmpfs", "/run", "--tmpfs", "/run/lock"]
SYSTEMD_INIT = ["-e", "container=docker"]
# The controller's files for the hosts: its SSH key, and its image export (inventories/ci).
CI_DIR = KIT_ROOT / ".devkit" / "ci-hosts"
KEY = CI_DIR / "id_ed25519"
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


def image(kind: str) -> str:
    return IMAGE if kind == "plain" else IMAGE.replace(":", f"-{kind}:")


def _key() -> Path:
    """The controller's public key for the hosts (made once)."""
    if not KEY.exists():
        KEY.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "devkit-ci", "-f", str(KEY)],
            check=True,
        )
    return KEY.with_suffix(".pub")


def _port_free(port: int, address: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((address, port)) != 0


# OpenSSH's client options for the hosts (recreated with new host keys on every run).
SSH_OPTIONS = [
    "-i", str(KEY), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
]  # fmt: skip


def ssh(name: str, command: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """COMMAND on the host NAME as root (text output captured, unless KWARGS say otherwise)."""
    port = {**HOSTS, ARM64: ARM64_PORT}[name]
    options = {"capture_output": True, "text": True, "timeout": timeout, "check": False, **kwargs}
    return subprocess.run(
        ["ssh", *SSH_OPTIONS, "-p", str(port), "root@127.0.0.1", command], **options
    )


def _wait_for_ssh(name: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    command = [
        "ssh", *SSH_OPTIONS, "-p", str(port), "-o", "ConnectTimeout=2",
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


def reboot(name: str) -> None:
    """Restart the host's container, as a reboot: its processes end (systemd shuts down its
    units first), /run starts empty, its disks stay. Returns when SSH answers again."""
    _docker("restart", "--time", "60", name)
    _wait_for_ssh(name, HOSTS[name])


def up() -> None:
    """Build the image, start the hosts fresh (an old one is replaced), wait until SSH answers."""
    _ssh_client()
    down()
    if _docker("image", "inspect", BASE, check=False).returncode != 0:
        raise RuntimeError(f"no {BASE} image: run `devkit images.build` (or setup) first")
    for kind in sorted(set(KINDS.values())):
        _docker(
            "build", "-q", "-t", image(kind), "--target", kind, "--build-arg", f"BASE={BASE}",
            str(Path(__file__).parent),
        )  # fmt: skip
    try:
        for name, port in HOSTS.items():
            _start(name, port, KINDS[name], image(KINDS[name]), _kit_mounts())
        for name, port in HOSTS.items():
            _wait_for_ssh(name, port)
    except RuntimeError:
        down()  # none left running half set up
        raise


def _start(name: str, port: int, kind: str, ref: str, mounts: list[str]) -> None:
    if not _port_free(port):
        raise RuntimeError(f"127.0.0.1:{port} is taken: free it for {name} (inventories/ci)")
    init = SYSTEMD_INIT if kind == "systemd" else []
    _docker(
        "run", "-d", "--name", name, "--hostname", name, *RUN, *init,
        "--add-host", "host.docker.internal:host-gateway",
        "-p", f"127.0.0.1:{port}:22", *NESTED_DOCKER, "-v", f"{name}-docker:/var/lib/docker",
        *mounts, "--label", f"{LABEL}=1", ref,
    )  # fmt: skip
    # Copied in, root's and 0600, not mounted: sshd refuses a key file its user does not own
    # (mounted from a docker-group user's checkout it was that user's).
    _docker(
        "exec", "-i", name, "sh", "-c",
        "umask 077 && cat > /root/.ssh/authorized_keys && chown root:root /root/.ssh/authorized_keys",
        input=_key().read_text(),
    )  # fmt: skip


def up_arm64() -> None:
    """Build the arm64 host's image from the arm64 base and start it fresh (programs run under
    emulation: its first SSH answer takes seconds more)."""
    _ssh_client()
    down_arm64()
    if _docker("image", "inspect", ARM64_BASE, check=False).returncode != 0:
        raise RuntimeError(f"no {ARM64_BASE} image: run `devkit images.build --arch arm64` first")
    ref = "devkit/testhost-arm64:bookworm"
    _docker(
        "build", "-q", "-t", ref, "--target", "plain", "--build-arg", f"BASE={ARM64_BASE}",
        str(Path(__file__).parent),
    )  # fmt: skip
    # Not the controller's kit nor its (amd64) Python: the kit role ships its own for aarch64.
    try:
        _start(ARM64, ARM64_PORT, "plain", ref, [])
        _wait_for_ssh(ARM64, ARM64_PORT, timeout=180)
    except RuntimeError:
        down_arm64()
        raise


def down_arm64() -> None:
    _remove(ARM64)


# moto's S3 server for the hosts' scheduled backups (inventories/ci: devkit_s3_endpoint_url).
S3_PORT = 2230
S3_BUCKET = "devkit-ci-backups"


def bridge_gateway() -> str:
    """This machine's address on Docker's default bridge: the hosts' host.docker.internal,
    reachable from this machine and its containers only."""
    import ipaddress

    gateway, subnet = _docker(
        "network", "inspect", "bridge", "--format",
        "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}",
    ).stdout.split(" ", 1)  # fmt: skip
    # An engine that found docker0 already addressed records no gateway (seen with Debian's
    # 20.10.24): the bridge's own address is then its subnet's first, as Docker assigns it.
    # Never "" (which a server binds as every address).
    if gateway:
        return gateway
    if not subnet.strip():
        raise RuntimeError(
            "Docker's bridge network has no gateway nor subnet: the S3 test server has no address"
        )
    return str(next(ipaddress.ip_network(subnet.strip()).hosts()))


@contextlib.contextmanager
def s3_server():
    """moto's S3 server on the bridge address, with the inventory's bucket; yields a boto3
    client for it."""
    import boto3
    from moto.server import ThreadedMotoServer

    address = bridge_gateway()
    if not _port_free(S3_PORT, address):
        raise RuntimeError(f"{address}:{S3_PORT} is taken: free it for the hosts' S3 server")
    server = ThreadedMotoServer(ip_address=address, port=S3_PORT, verbose=False)
    server.start()
    try:
        client = boto3.client(
            "s3", endpoint_url=f"http://{address}:{S3_PORT}", region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        client.create_bucket(Bucket=S3_BUCKET)
        yield client
    finally:
        server.stop()


def _remove(*names: str) -> None:
    """Remove the test hosts NAMES and their Docker data volumes; a container of such a name
    that is not a test host (no LABEL) is left alone, and refused."""
    for name in names:
        shown = _docker(
            "inspect", "-f", f'{{{{index .Config.Labels "{LABEL}"}}}}', name, check=False
        )
        if shown.returncode != 0:
            continue  # none of that name
        if shown.stdout.strip() != "1":
            raise RuntimeError(
                f"a container named {name} exists that is not a test host (no {LABEL} label): "
                "rename or remove it, the fleet tests need the name"
            )
        _docker("rm", "-f", "-v", name, check=False)
    _docker("volume", "rm", "-f", *(f"{name}-docker" for name in names), check=False)


# Run on a host with its kit's virtualenv: an authenticated query and a PING every 0.1 s with
# the app's passwords, one line each (`TIME ok` or `TIME error CAUSE`), until /tmp/probe.stop.
APP_PROBE = """
import os, time
from pathlib import Path
import psycopg2, redis
from devkit.envfile import read_env_file
values = read_env_file(Path("/srv/devkit/.env.local"))
print("started", flush=True)
while not os.path.exists("/tmp/probe.stop"):
    began = time.time()
    try:
        with psycopg2.connect(values["DATABASE_URL_SYNC"], connect_timeout=1) as conn:
            conn.cursor().execute("SELECT count(*) FROM fleet_probe")
        conn.close()
        cache = redis.Redis.from_url(values["REDIS_URL"], socket_timeout=1)
        cache.ping()
        cache.close()
        print(f"{began:.2f} ok", flush=True)
    except Exception as error:
        print(f"{began:.2f} error {type(error).__name__}", flush=True)
    time.sleep(max(0.0, 0.1 - (time.time() - began)))
"""


@contextlib.contextmanager
def app_probes(hosts: list[str]):
    """While the block runs, APP_PROBE on each host; yields host -> the times its probe failed
    (filled when the block ends)."""
    import threading

    failures: dict[str, list[float]] = {}
    outputs: dict[str, str] = {}

    def probe(host: str) -> None:
        outputs[host] = ssh(
            host, "rm -f /tmp/probe.stop; PYTHONPATH=/opt/devkit /opt/devkit/.venv/bin/python -",
            timeout=1500, input=APP_PROBE,
        ).stdout  # fmt: skip

    threads = [threading.Thread(target=probe, args=(host,)) for host in hosts]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        yield failures
    finally:
        for host in hosts:
            ssh(host, "touch /tmp/probe.stop")
        for thread in threads:
            thread.join()
        for host in hosts:
            lines = outputs.get(host, "").splitlines()
            if lines[:1] != ["started"] or len(lines) < 20:
                raise RuntimeError(f"the probe on {host} did not run: {lines[:5]}")
            failures[host] = [float(line.split()[0]) for line in lines if " error " in line]


def down() -> None:
    """Remove the hosts and the volumes holding their Docker data (all hosts at once)."""
    _remove(*HOSTS)


if __name__ == "__main__":
    actions = {"up": up, "down": down, "up-arm64": up_arm64, "down-arm64": down_arm64}
    try:
        actions[sys.argv[1] if len(sys.argv) > 1 else "up"]()
    except RuntimeError as exc:  # one line, no traceback
        sys.exit(f"error: {exc}")
