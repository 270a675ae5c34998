"""The docker role on its own (playbooks/engine.yml, which setup also runs alone when the daemon
does not answer), for real: an extra user joins the docker group, idempotently."""

import grp
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.paths import ANSIBLE_CFG, KIT_ROOT, LOCAL_INVENTORY, PLAYBOOKS

pytestmark = [pytest.mark.ansible, pytest.mark.machine]

PROBE_USER = "devkit-probe"
ENGINE = PLAYBOOKS / "engine.yml"


@pytest.fixture
def probe_user():
    subprocess.run(
        ["useradd", "--system", "--no-create-home", PROBE_USER], capture_output=True, check=False
    )
    yield PROBE_USER
    subprocess.run(["userdel", PROBE_USER], capture_output=True, check=False)


def run_role(user: str, coloured: bool = False) -> subprocess.CompletedProcess[str]:
    """The docker role alone; `coloured`: Ansible's output as on a terminal."""
    return subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(LOCAL_INVENTORY),
            str(ENGINE),
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


def test_role_adds_users_to_the_docker_group_once(probe_user):
    """The first run plain, the second as on a terminal (coloured), where the recap's counts are
    still read."""
    from devkit.playbook import plain, recap_by_host

    first = run_role(probe_user)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "\x1b[" not in first.stdout
    assert probe_user in grp.getgrnam("docker").gr_mem
    assert "root" not in grp.getgrnam("docker").gr_mem
    second = run_role(probe_user, coloured=True)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "\x1b[" in second.stdout
    assert recap_by_host(plain(second.stdout))["localhost"]["changed"] == 0


def test_role_refuses_bad_arguments_at_the_start():
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(LOCAL_INVENTORY),
            str(ENGINE),
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
