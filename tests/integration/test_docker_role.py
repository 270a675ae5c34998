"""The docker role on its own, for real: an extra user joins the docker group, idempotently."""

import grp
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.paths import ANSIBLE_CFG, KIT_ROOT, LOCAL_INVENTORY

pytestmark = [pytest.mark.ansible, pytest.mark.machine]

PROBE_USER = "devkit-probe"
PLAYBOOK = """
- name: Apply the docker role alone
  hosts: workstations
  gather_facts: true
  gather_subset: [min]
  roles:
    - role: docker
      become: true
"""


@pytest.fixture
def probe_user():
    subprocess.run(
        ["useradd", "--system", "--no-create-home", PROBE_USER], capture_output=True, check=False
    )
    yield PROBE_USER
    subprocess.run(["userdel", PROBE_USER], capture_output=True, check=False)


def run_role(tmp_path: Path, user: str, coloured: bool = False) -> subprocess.CompletedProcess[str]:
    """The docker role alone; `coloured`: Ansible's output as on a terminal."""
    playbook = tmp_path / "docker-only.yml"
    playbook.write_text(PLAYBOOK)
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(LOCAL_INVENTORY),
            str(playbook),
            "-e",
            f'{{"docker_users": ["{user}", "root"]}}',
        ],
        cwd=KIT_ROOT,
        env={
            "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
            "ANSIBLE_ROLES_PATH": str(KIT_ROOT / "roles"),
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            **({"ANSIBLE_FORCE_COLOR": "1"} if coloured else {}),
        },
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("coloured", [False, True], ids=["plain", "as-on-a-terminal"])
def test_role_adds_users_to_the_docker_group_once(tmp_path, probe_user, coloured):
    from devkit.playbook import plain, recap_by_host

    first = run_role(tmp_path, probe_user, coloured)
    assert first.returncode == 0, first.stdout[-3000:]
    assert probe_user in grp.getgrnam("docker").gr_mem
    assert "root" not in grp.getgrnam("docker").gr_mem
    second = run_role(tmp_path, probe_user, coloured)
    assert second.returncode == 0, second.stdout[-3000:]
    assert ("\x1b[" in second.stdout) == coloured
    assert recap_by_host(plain(second.stdout))["localhost"]["changed"] == 0


def test_role_refuses_bad_arguments_at_the_start(tmp_path):
    playbook = tmp_path / "bad.yml"
    playbook.write_text(PLAYBOOK)
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(LOCAL_INVENTORY),
            str(playbook),
            "-e",
            "docker_package_source=snap",
        ],
        cwd=KIT_ROOT,
        env={
            "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "docker_package_source" in result.stdout and "snap" in result.stdout
