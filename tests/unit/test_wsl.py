"""Which WSL this is (devkit/wsl.py), against kernel strings recorded on real machines (cited in
devkit/wsl.py): WSL 1 cannot run the Docker engine, so setup stops before it changes anything
and doctor fails with the fix (was: both took WSL 1 for WSL 2, and setup installed an engine
that cannot start)."""

import subprocess
import sys
from pathlib import Path

import pytest

from devkit import diagnosis as doctor
from devkit import diagnosis_wsl as doctor_wsl
from devkit.errors import SetupRequired
from devkit.paths import ANSIBLE_CFG, KIT_ROOT
from devkit.settings.model import load_settings
from devkit.wsl import HostFiles, wsl_version

from phrases import line_with

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
    (tmp_path / "osrelease").write_text(WSL1 + "\n")
    check = doctor_wsl.check_wsl(HostFiles(osrelease=tmp_path / "osrelease"))
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
        setup(settings, str(app), install_docker=True, host=HostFiles(osrelease=osrelease))
    assert "WSL 1" in refused.value.cause
    assert "wsl --set-version Ubuntu 2" in refused.value.hint
    assert list(app.iterdir()) == []


def run_playbook(tmp_path, tasks: str) -> str:
    """A one-play playbook on this machine with the docker role's filters; its output."""
    playbook = tmp_path / "probe.yml"
    playbook.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n" + tasks)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,",
         "-c", "local", str(playbook)],
        env={
            "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
            "ANSIBLE_FILTER_PLUGINS": str(KIT_ROOT / "roles/docker/filter_plugins"),
            "PYTHONPATH": str(KIT_ROOT),
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        },
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_docker_role_reads_the_kernel_by_the_same_rule(tmp_path):
    """The role's filter is devkit.wsl's rule (its boot command in /etc/wsl.conf depends on it)."""
    shown = run_playbook(
        tmp_path,
        "".join(
            f"    - ansible.builtin.debug:\n        msg: \"{name}={{{{ '{release}' | wsl_version }}}}\"\n"
            for name, release in (("wsl1", WSL1), ("wsl2", WSL2), ("debian", DEBIAN))
        ),
    )
    assert "wsl1=1" in shown and "wsl2=2" in shown and "debian=0" in shown


# /proc/mounts entries of Windows drives. WSL 1 (drvfs), as `mount -l` shows them in
# microsoft/WSL#3393 and #353; WSL 2 mounts the same drive over 9p with aname=drvfs, the
# automount options (wsl.conf [automount] options) following it after ';'.
ROOT = "/dev/sdc / ext4 rw,relatime,discard,errors=remount-ro,data=ordered 0 0"
WSL1_PLAIN = "C: {point} drvfs rw,noatime,uid=1000,gid=1000 0 0"
WSL1_METADATA = (
    "C: {point} drvfs rw,noatime,uid=1000,gid=1000,umask=22,fmask=11,metadata,case=off 0 0"
)
WSL2_PLAIN = (
    "C:\\134 {point} 9p rw,noatime,dirsync,aname=drvfs;path=C:\\;uid=1000;gid=1000;"
    "symlinkroot=/mnt/,mmap,access=client,msize=65536,trans=fd,rfd=5,wfd=5 0 0"
)
WSL2_METADATA = (
    "C:\\134 {point} 9p rw,noatime,dirsync,aname=drvfs;path=C:\\;metadata;uid=1000;gid=1000;"
    "symlinkroot=/mnt/,mmap,access=client,msize=65536,trans=fd,rfd=5,wfd=5 0 0"
)
# With `virtiofs=true` in .wslconfig: `drvfsC0 on /mnt/c type virtiofs (rw,noatime)`, as
# `mount` shows it in microsoft/WSL#14301 (was: not taken for a Windows drive).
WSL2_VIRTIOFS = "drvfsC0 {point} virtiofs rw,noatime 0 0"


@pytest.mark.parametrize(
    ("entry", "without_metadata"),
    [
        (WSL1_PLAIN, True),
        (WSL1_METADATA, False),
        (WSL2_PLAIN, True),
        (WSL2_METADATA, False),
        (WSL2_VIRTIOFS, True),
    ],
)
def test_a_windows_drive_without_metadata_is_named(entry, without_metadata):
    from devkit.wsl import drvfs_without_metadata

    mounts = "\n".join([ROOT, entry.format(point="/mnt/c")])
    app = Path("/mnt/c/developments/backend/.env.local")
    assert drvfs_without_metadata(app, mounts) == ("/mnt/c" if without_metadata else "")
    assert drvfs_without_metadata(Path("/home/taro/backend/.env.local"), mounts) == ""
    spaced = "\n".join([ROOT, entry.format(point="/mnt/my\\040data")])
    assert drvfs_without_metadata(Path("/mnt/my data/app/.env.local"), spaced) == (
        "/mnt/my data" if without_metadata else ""
    )


def test_doctor_tells_the_truth_about_a_file_chmod_cannot_make_private(tmp_path):
    """On a Windows drive without `metadata`, chmod 600 changes nothing: doctor says why the
    file stays readable and how to fix it (was: "chmod 600", which does nothing there)."""
    env_file = tmp_path / "backend" / ".env.local"
    env_file.parent.mkdir()
    env_file.write_text("PGPASSWORD=x\n")
    env_file.chmod(0o777)  # what DrvFs shows for every file without metadata
    mounts = tmp_path / "mounts"
    mounts.write_text("\n".join([ROOT, WSL2_PLAIN.format(point=tmp_path)]) + "\n")
    check = doctor.check_env_file(env_file, mounts)
    assert check.status == doctor.WARN
    assert "mode 0777" in check.detail and "without `metadata`" in check.detail
    assert 'options = "metadata"' in check.fix and "wsl --shutdown" in check.fix
    assert "chmod" not in check.fix
    mounts.write_text("\n".join([ROOT, WSL2_METADATA.format(point=tmp_path)]) + "\n")
    assert doctor.check_env_file(env_file, mounts).fix == f"chmod 600 {env_file}"


# /etc/wsl.conf files as users have them (Microsoft's wsl-config page shows [boot] with
# `systemd=true` and with `command = service docker start`; a user's own boot command).
USERS_COMMAND = '[automount]\noptions = "metadata"\n\n[boot]\ncommand = "mount -a"\n'
KITS_ONLY = "[boot]\ncommand = service docker start\n"
BOTH = '[automount]\noptions = "metadata"\n\n[boot]\ncommand = "mount -a; service docker start"\n'


@pytest.mark.parametrize(
    ("before", "systemd", "after"),
    [
        ("", False, "[boot]\ncommand = service docker start\n"),
        (
            "[network]\nhostname = dev\n",
            False,
            "[network]\nhostname = dev\n\n[boot]\ncommand = service docker start\n",
        ),
        (USERS_COMMAND, False, BOTH),  # was: the user's command replaced
        (BOTH, False, BOTH),
        (KITS_ONLY, True, "[boot]\n"),  # was: left there under systemd (microsoft/WSL#12307)
        (BOTH, True, USERS_COMMAND),
        ("[boot]\nsystemd=true\n", True, "[boot]\nsystemd=true\n"),
        ("", True, ""),
        # WSL drops an inline comment (was: the kit's command appended after it, in the comment)
        (
            "[boot]\ncommand = mount -a # the NAS\n",
            False,
            "[boot]\ncommand = mount -a; service docker start # the NAS\n",
        ),
        ("[boot]\ncommand = service docker start # kit\n", True, "[boot]\n"),
    ],
)
def test_the_boot_command_is_added_beside_the_users_and_taken_out_under_systemd(
    before, systemd, after
):
    from devkit.wsl import wsl_conf_boot

    assert wsl_conf_boot(before, systemd) == after
    assert wsl_conf_boot(after, systemd) == after  # a second run changes nothing


def test_the_docker_role_writes_wsl_conf_by_that_rule(tmp_path):
    """The role's own task file (wsl-boot.yml) on a wsl.conf with the user's command, without
    systemd and then with it."""
    wsl_conf = tmp_path / "wsl.conf"
    wsl_conf.write_text(USERS_COMMAND)
    for systemd, expected in ((False, BOTH), (True, USERS_COMMAND)):
        run_playbook(
            tmp_path,
            "    - ansible.builtin.include_tasks: "
            f"{KIT_ROOT}/roles/docker/tasks/wsl-boot.yml\n"
            f"      vars: {{docker_wsl_conf: '{wsl_conf}', __docker_systemd: {systemd}}}\n",
        )
        assert wsl_conf.read_text() == expected


def test_setup_stops_while_systemd_is_enabled_but_not_running_yet(tmp_path):
    from devkit.workstation import setup

    osrelease, wsl_conf = tmp_path / "osrelease", tmp_path / "wsl.conf"
    osrelease.write_text(WSL2 + "\n")
    wsl_conf.write_text("[boot]\nsystemd=true\n")
    host = HostFiles(osrelease=osrelease, wsl_conf=wsl_conf, systemd=tmp_path / "no-systemd")
    app = tmp_path / "app"
    app.mkdir()
    with pytest.raises(SetupRequired) as refused:
        setup(load_settings({}), str(app), install_docker=True, host=host)
    assert "enables systemd, but it does not run yet" in refused.value.cause
    assert "wsl --shutdown" in refused.value.hint
    assert list(app.iterdir()) == []


# Docker Desktop as a WSL 2 distribution sees it (devkit/wsl.py cites where each fact is
# recorded): its Windows install, its shared directory while it runs, the `docker` it provides
# through the WSL integration, the Windows shim found on the Windows PATH when that is off.
SHIM_MESSAGE = (
    "The command 'docker' could not be found in this WSL 2 distro.\n"
    "We recommend to activate the WSL integration in Docker Desktop settings.\n"
)


def desktop_host(tmp_path, installed=True, running=True, integration=True, native=False):
    """A WSL 2 host's files as Docker Desktop leaves them, under tmp_path."""
    (tmp_path / "osrelease").write_text(WSL2 + "\n")
    drives = tmp_path / "mnt"
    bin_dir = tmp_path / "usr-bin"
    bin_dir.mkdir()
    if installed:
        exe = drives / "c" / "Program Files/Docker/Docker/Docker Desktop.exe"
        exe.parent.mkdir(parents=True)
        exe.write_bytes(b"MZ")
        shim = drives / "c" / "Program Files/Docker/Docker/resources/bin/docker"
        shim.parent.mkdir(parents=True)
        shim.write_text(f"#!/bin/sh\nprintf '{SHIM_MESSAGE}'\nexit 1\n")
        shim.chmod(0o755)
    desktop = drives / "wsl" / "docker-desktop"
    if running:
        cli = desktop / "cli-tools/usr/bin/docker"
        cli.parent.mkdir(parents=True)
        cli.write_text("#!/bin/sh\n")
        cli.chmod(0o755)
        if integration:
            (bin_dir / "docker").symlink_to(cli)
    status = tmp_path / "status"
    status.write_text(
        "Package: docker.io\nStatus: install ok installed\n\n" if native else
        "Package: bash\nStatus: install ok installed\n\n"
    )  # fmt: skip
    windows_path = drives / "c" / "Program Files/Docker/Docker/resources/bin"
    return HostFiles(
        osrelease=tmp_path / "osrelease",
        windows_drives=drives,
        desktop_dir=desktop,
        dpkg_status=status,
        path=f"{bin_dir}:{windows_path}",  # WSL appends Windows' PATH
    )


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ({}, None),  # Desktop running, integration on: its engine is used
        ({"installed": False, "running": False}, None),  # no Desktop: the kit installs one
        ({"running": False}, "installed on Windows but not running"),
        ({"integration": False}, "WSL integration is off for Ubuntu (`docker` here is its"),
        ({"native": True}, "has an engine of its own (docker.io)"),
        ({"running": False, "native": True}, "has an engine of its own (docker.io)"),
    ],
)
def test_docker_desktop_is_told_apart_by_evidence(tmp_path, case, expected):
    """Was: /mnt/wsl/docker-desktop alone decided; a stopped Desktop got a second engine
    installed, and with its integration off setup skipped the install and failed later."""
    from devkit.wsl import desktop_problem

    problem = desktop_problem(desktop_host(tmp_path, **case), "Ubuntu")
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem.cause, problem
        assert problem.hint


def test_doctor_names_the_integration_to_turn_on(tmp_path, monkeypatch):
    """doctor called the Windows shim `docker` OK and said "start Docker Desktop", which runs."""
    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu-24.04")
    check = doctor_wsl.check_wsl(desktop_host(tmp_path, integration=False))
    assert check.status == doctor.FAIL and "integration is off" in check.detail
    assert "Settings > Resources > WSL integration" in check.fix
    assert "turn on Ubuntu-24.04" in check.fix


def test_the_docker_group_fix_on_wsl_restarts_the_distribution(tmp_path, monkeypatch):
    """A group joined takes effect in a new login; on WSL that is `wsl --terminate` (VS Code's
    Remote - WSL server keeps running with the old groups; was: "log in again")."""
    from devkit.compose import no_permission

    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu")
    monkeypatch.setenv("USER", "taro")
    release = tmp_path / "osrelease"
    release.write_text(WSL2 + "\n")
    assert "wsl --terminate Ubuntu" in no_permission(HostFiles(osrelease=release)).hint
    release.write_text(DEBIAN + "\n")
    linux = no_permission(HostFiles(osrelease=release)).hint
    assert "usermod -aG docker taro" in linux and "log in again" in linux


def test_the_tasks_json_for_an_app_on_c_carries_both_forms(tmp_path):
    """The vscode role's tasks.json template, rendered by Ansible as the role renders it, for the
    seeds' layout (C:\\developments\\backend, /mnt/c/developments/backend in WSL): the Linux
    task and its "windows" override, the start task held in the background (microsoft/WSL#9667)."""
    import json

    import json5

    shown = run_playbook(
        tmp_path,
        "    - ansible.builtin.copy:\n"
        f"        dest: {tmp_path}/tasks.json\n"
        f"        content: \"{{{{ lookup('template', '{KIT_ROOT}/vscode-templates/tasks.json') }}}}\"\n"
        "      vars:\n"
        "        vscode_host: both\n"
        "        vscode_wsl_distro: Ubuntu\n"
        "        vscode_app_dir: /mnt/c/developments/backend\n"
        "        vscode_auto_start: false\n",
    )
    assert "failed=0" in shown
    tasks = {t["label"]: t for t in json5.loads((tmp_path / "tasks.json").read_text())["tasks"]}
    start = tasks["devkit: start services"]
    assert start["command"] == "bash" and start["isBackground"] is True
    assert start["windows"]["command"] == "wsl.exe"
    # wsl.exe takes VS Code's C:\developments\backend for --cd and enters /mnt/c/...: the file
    # names no path of this machine (was: --cd /mnt/c/developments/backend and the hook's path).
    assert start["windows"]["args"] == [
        "-d", "Ubuntu", "--cd", "${workspaceFolder}", "--exec", "bash", "-lc",
        "exec bash .vscode/devkit-services.sh start",
    ]  # fmt: skip
    assert "/mnt/c/developments/backend" not in (tmp_path / "tasks.json").read_text()
    assert json.loads(json.dumps(start))  # plain JSON too


def test_doctor_does_not_call_desktops_windows_shim_ok(tmp_path, monkeypatch):
    """Was: `docker` OK (the Windows shim found on Windows' PATH), then "start Docker Desktop"."""
    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu")
    [check] = doctor.check_docker(host=desktop_host(tmp_path, integration=False))
    assert check.status == doctor.FAIL and "a Windows program" in check.detail
    assert "resources/bin/docker" in check.detail
    line_with(check.fix, "Ubuntu", "WSL integration")


@pytest.mark.parametrize("entry", [WSL1_PLAIN, WSL1_METADATA, WSL2_PLAIN, WSL2_METADATA])
def test_an_app_on_a_windows_drive_is_warned_of_its_slowness(tmp_path, entry):
    from devkit.wsl import slow_drive_warning

    drive = tmp_path / "c"
    app = drive / "developments" / "backend"
    app.mkdir(parents=True)
    mounts = tmp_path / "mounts"
    mounts.write_text("\n".join([ROOT, entry.format(point=drive)]) + "\n")
    cause, fix = slow_drive_warning(app, mounts)
    assert f"on the Windows drive {drive}" in cause and "9p" in cause
    assert "under ~" in fix and "\\\\wsl.localhost\\" in fix
    mounts.write_text(ROOT + "\n")
    assert slow_drive_warning(app, mounts) is None


def test_doctor_tells_an_older_kits_f5_hooks_apart(tmp_path):
    """The sample app's tasks.json as the previous kit wrote it (this repository at 664aa97: a
    start task that returns) is named with the fix; the kit's current one is fine."""
    (tmp_path / "osrelease").write_text(WSL2 + "\n")
    host = HostFiles(osrelease=tmp_path / "osrelease")
    app = tmp_path / "backend"
    (app / ".vscode").mkdir(parents=True)
    older = subprocess.run(
        ["git", "show", "664aa97:examples/sample_app/.vscode/tasks.json"],
        cwd=KIT_ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    (app / ".vscode" / "tasks.json").write_text("// the team's comment\n" + older)
    [check] = doctor_wsl.check_vscode_hooks(app, host)
    assert check.status == doctor.WARN and "older kit's start task" in check.detail
    assert f"devkit vscode.install --app-dir {app}" in check.fix
    current = (KIT_ROOT / "examples/sample_app/.vscode/tasks.json").read_text()
    (app / ".vscode" / "tasks.json").write_text(current)
    [check] = doctor_wsl.check_vscode_hooks(app, host)
    assert check.status == doctor.OK
    (tmp_path / "osrelease").write_text(DEBIAN + "\n")
    assert doctor_wsl.check_vscode_hooks(app, host) == []  # on Linux both work
