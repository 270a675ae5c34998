"""An arm64 server (a Raspberry Pi's Debian bookworm arm64) provisioned by site.yml, run under
qemu-user on this amd64 machine (inventories/ci-arm64, tests/fleet/testhosts.py up-arm64).

What runs: site.yml's checks (the controller's arm64 images chosen for it, its memory), the
network role, the docker role's arm64 packages, and the kit itself (its virtualenv from the
aarch64 wheels the controller packed). What cannot run here, proven below with the exact
errors: a Docker engine inside the emulated host. qemu-user 7.2 (Debian bookworm's) refuses
`clone` with CLONE_PARENT or a namespace flag (EINVAL), which runc's nsexec needs to start any
container, and it has no netlink netfilter, which dockerd's iptables needs for its bridge. The
arm64 images themselves start and answer on this machine's engine
(tests/integration/test_images.py runs every image test on them)."""

from __future__ import annotations

import shlex
import subprocess

import pytest

import testhosts
from phrases import line_with

pytestmark = [pytest.mark.ansible, pytest.mark.docker, pytest.mark.machine]

INVENTORY = "inventories/ci-arm64"
VAULT = ("--vault-password-file", f"{INVENTORY}/vault-password.txt")
HOST = testhosts.ARM64


def ssh(command: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return testhosts.ssh(HOST, command, timeout, **kwargs)


@pytest.fixture(scope="module")
def invoke(operator):
    return operator.invoke


@pytest.fixture(scope="module")
def arm64_host(invoke):
    built = invoke("images.build", "--arch", "arm64", timeout=1800)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    testhosts.up_arm64()
    yield HOST
    testhosts.down_arm64()


@pytest.fixture(scope="module")
def provision(arm64_host, invoke):
    return invoke("provision", "--inventory", INVENTORY, *VAULT, timeout=1800)


def test_the_host_is_arm64(arm64_host):
    said = ssh("uname -m; dpkg --print-architecture").stdout.split()
    assert said == ["aarch64", "arm64"]


def test_site_yml_passes_its_checks_and_stops_at_the_engine_with_its_own_reason(provision):
    """The check plays pass for the arm64 host (the controller has arm64 images: nothing is
    refused), the docker role installs Debian's arm64 engine, and the run stops there with the
    daemon's own reason on the host's line (was: `docker info`'s "Cannot connect", the reason
    only in a log on the host)."""
    out = provision.stdout + provision.stderr
    assert provision.returncode != 0, out[-3000:]
    line_with(out, f"{HOST}: FAILED", "the Docker daemon did not start", "iptables")
    assert "refused before any change" not in out and "below the 700 MiB" not in out
    packages = ssh("dpkg-query -W -f '${Package} ${Architecture} ${Status}\\n' docker.io")
    assert packages.stdout.split()[:2] == ["docker.io", "arm64"], packages.stdout
    assert "install ok installed" in packages.stdout


KIT_PLAYBOOK = """
- name: The kit alone on the arm64 host
  hosts: servers
  gather_facts: true
  gather_subset: [min]
  become: true
  roles:
    - role: kit
      vars:
        kit_dir: "{{ devkit_kit_dir }}"
        kit_settings: "{{ hostvars[inventory_hostname] | devkit_settings }}"
"""


def test_the_kit_runs_on_arm64_from_the_wheels_the_controller_packed(arm64_host, tmp_path):
    """The kit role, which comes after the engine in site.yml, applied alone: its virtualenv
    from aarch64 wheels (psycopg2-binary, pydantic-core, ... built for aarch64), and the
    `devkit` command answering on the host."""
    from devkit.paths import KIT_ROOT
    from devkit.playbook import run_playbook

    playbook = tmp_path / "kit.yml"
    playbook.write_text(KIT_PLAYBOOK)
    result = run_playbook(
        playbook, KIT_ROOT / INVENTORY, {}, echo=False, local=False, check=False,
        args=(*VAULT,), env={"ANSIBLE_ROLES_PATH": str(KIT_ROOT / "roles"),
                             "ANSIBLE_FILTER_PLUGINS": str(KIT_ROOT / "playbooks" / "filter_plugins")},
    )  # fmt: skip
    assert result.returncode == 0, result.output[-3000:]
    probe = (
        "import platform, psycopg2, pydantic_core, redis; "
        "print(platform.machine(), psycopg2.__version__.split()[0])"
    )
    said = ssh(f"/opt/devkit/.venv/bin/python -c {shlex.quote(probe)} && devkit --version")
    assert said.returncode == 0, said.stdout + said.stderr
    machine, _ = said.stdout.splitlines()[0].split()
    assert machine == "aarch64"
    assert said.stdout.splitlines()[1].startswith("devkit ")


CLONE_PROBE = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for name, flags in (("fork", 17), ("CLONE_PARENT", 0x8000 | 17), ("CLONE_NEWNS", 0x20000 | 17)):
    pid = libc.syscall(220, flags, 0, 0, 0, 0)  # clone on aarch64
    if pid == 0:
        os._exit(0)
    errno = ctypes.get_errno()
    if pid > 0:
        os.waitpid(pid, 0)
    print(name, "ok" if pid > 0 else os.strerror(errno))
"""


def test_why_no_container_starts_inside_the_emulated_host(provision):
    """The proof, as the issue asks: with iptables off dockerd starts, and every container
    then fails in runc, whose nsexec clones with CLONE_PARENT and namespace flags: qemu-user
    answers EINVAL (a plain fork works)."""
    clones = ssh(f"python3 -c {shlex.quote(CLONE_PROBE)}").stdout.splitlines()
    assert clones == ["fork ok", "CLONE_PARENT Invalid argument", "CLONE_NEWNS Invalid argument"]
    started = ssh(
        "nohup dockerd --iptables=false --ip6tables=false --bridge=none "
        ">/var/log/dockerd-probe.log 2>&1 & "
        "for i in $(seq 60); do docker info >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1"
    )
    try:
        assert started.returncode == 0, ssh("tail -5 /var/log/dockerd-probe.log").stdout
        saved = subprocess.Popen(
            ["docker", "save", "devkit/redis:7-bookworm-arm64"], stdout=subprocess.PIPE
        )
        ssh("docker load -q", 600, stdin=saved.stdout, text=False, check=True)
        saved.wait()
        run = ssh("docker run --rm --network none devkit/redis:7-bookworm-arm64 true")
        assert run.returncode != 0
        assert "failed to start shim" in run.stderr and "invalid argument" in run.stderr, run.stderr
    finally:
        ssh("pkill dockerd; true")
