"""Which WSL this is (devkit/wsl.py), against kernel strings recorded on real machines (cited in
devkit/wsl.py): WSL 1 cannot run the Docker engine, so setup stops before it changes anything
and doctor fails with the fix (was: both took WSL 1 for WSL 2, and setup installed an engine
that cannot start)."""

import subprocess
import sys
from pathlib import Path

import pytest

from devkit import diagnosis as doctor
from devkit.errors import SetupRequired
from devkit.paths import ANSIBLE_CFG, KIT_ROOT
from devkit.settings.model import load_settings
from devkit.wsl import wsl_version

pytestmark = pytest.mark.unit

WSL1 = "4.4.0-19041-Microsoft"  # powersj/whatsthis#10
WSL2_OLD = "4.19.128-microsoft-standard"  # powersj/whatsthis#10
WSL2 = "5.15.153.1-microsoft-standard-WSL2"  # microsoft/WSL#423
DEBIAN = "6.1.0-13-amd64"


@pytest.mark.parametrize(("release", "version"), [(WSL1, 1), (WSL2_OLD, 2), (WSL2, 2), (DEBIAN, 0)])
def test_the_kernel_string_tells_which_wsl(release, version):
    assert wsl_version(release + "\n") == version


def test_doctor_fails_on_wsl1_and_names_the_conversion(tmp_path, monkeypatch):
    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu-22.04")
    proc = tmp_path / "proc"
    (proc / "sys/kernel").mkdir(parents=True)
    (proc / "sys/kernel/osrelease").write_text(WSL1 + "\n")
    check = doctor.check_wsl(proc, tmp_path / "Users")
    assert check.status == doctor.FAIL
    assert "WSL 1" in check.detail and WSL1 in check.detail
    assert "wsl --set-version Ubuntu-22.04 2" in check.fix


def test_setup_on_wsl1_stops_before_it_changes_anything(tmp_path):
    from devkit.workstation import setup

    osrelease = tmp_path / "osrelease"
    osrelease.write_text(WSL1 + "\n")
    app = tmp_path / "app"
    app.mkdir()
    settings = load_settings({"vscode_wsl_distro": "Ubuntu"})
    with pytest.raises(SetupRequired) as refused:
        setup(settings, str(app), install_docker=True, osrelease=osrelease)
    assert "WSL 1" in refused.value.cause
    assert "wsl --set-version Ubuntu 2" in refused.value.hint
    assert list(app.iterdir()) == []


@pytest.mark.parametrize(("release", "wsl"), [(WSL1, True), (WSL2, True), (DEBIAN, False)])
def test_the_docker_role_reads_the_kernel_by_the_same_rule(tmp_path, release, wsl):
    """The role's filter is devkit.wsl's rule (its boot command in /etc/wsl.conf depends on it)."""
    playbook = tmp_path / "probe.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - ansible.builtin.debug:\n"
        f"        msg: \"wsl={{{{ '{release}' | wsl_version > 0 }}}}\"\n"
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            "localhost,",
            str(playbook),
        ],
        env={
            "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
            "ANSIBLE_FILTER_PLUGINS": str(KIT_ROOT / "roles/docker/filter_plugins"),
            "PYTHONPATH": str(KIT_ROOT),
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"wsl={wsl}" in result.stdout
