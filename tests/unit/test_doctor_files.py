"""doctor's checks that read files only: WSL2 forwarding, the env file's mode, disk space."""

import pytest

from devkit import diagnosis as doctor

pytestmark = pytest.mark.unit


def fake_proc(tmp_path, release: str):
    """The host files of a machine with this kernel string, and nothing of Docker Desktop."""
    from devkit.wsl import HostFiles

    (tmp_path / "osrelease").write_text(release + "\n")
    return HostFiles(
        osrelease=tmp_path / "osrelease",
        windows_drives=tmp_path / "mnt",
        desktop_dir=tmp_path / "mnt/wsl/docker-desktop",
        dpkg_status=tmp_path / "status",
        wsl_conf=tmp_path / "wsl.conf",
    )


def wslconfig(tmp_path, text: str):
    users = tmp_path / "Users"
    (users / "taro").mkdir(parents=True)
    (users / "taro" / ".wslconfig").write_text(text)
    return users


def test_plain_linux_has_nothing_to_forward(tmp_path):
    check = doctor.check_wsl(fake_proc(tmp_path, "6.1.0-13-amd64"), tmp_path / "none")
    assert check.status == doctor.OK and "not WSL" in check.detail


def test_wsl2_with_forwarding_turned_off_warns(tmp_path):
    proc = fake_proc(tmp_path, "5.15.153.1-microsoft-standard-WSL2")
    users = wslconfig(tmp_path, "[wsl2]\nlocalhostForwarding=false\n")
    check = doctor.check_wsl(proc, users)
    assert check.status == doctor.WARN
    assert "localhostForwarding=true" in check.fix and "wsl --shutdown" in check.fix


def test_wsl2_mirrored_networking_is_fine(tmp_path):
    proc = fake_proc(tmp_path, "5.15.153.1-microsoft-standard-WSL2")
    users = wslconfig(tmp_path, "[wsl2]\nnetworkingMode=mirrored\nlocalhostForwarding=false\n")
    assert doctor.check_wsl(proc, users).status == doctor.OK


def test_env_file_missing_or_readable_by_others(tmp_path):
    env = tmp_path / ".env.local"
    assert doctor.check_env_file(env).status == doctor.FAIL
    env.write_text("PGPASSWORD=x\n")
    env.chmod(0o644)
    check = doctor.check_env_file(env)
    assert check.status == doctor.WARN and check.fix == f"chmod 600 {env}"
    env.chmod(0o600)
    assert doctor.check_env_file(env).status == doctor.OK


def test_disk_thresholds(tmp_path, monkeypatch):
    class Usage:
        free = 3 << 30

    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda path: Usage)
    assert [c.status for c in doctor.check_disk({"app": tmp_path / "not" / "yet"})] == [doctor.WARN]
    Usage.free = 512 << 20
    assert doctor.check_disk({"app": tmp_path})[0].status == doctor.FAIL


@pytest.mark.parametrize(
    ("engine", "bind", "status"),
    [
        ("20.10.24+dfsg1", "127.0.0.1", "WARN"),  # Debian 12's docker.io
        ("27.5.1", "127.0.0.1", "WARN"),
        ("28.0.0", "127.0.0.1", "OK"),
        ("29.1.2", "127.0.0.1", "OK"),
        ("unknown", "127.0.0.1", "WARN"),
        ("20.10.24", "0.0.0.0", "OK"),  # published everywhere on purpose: nothing to warn about
    ],
)
def test_loopback_ports_of_an_engine_older_than_28_are_named(engine, bind, status):
    from devkit.diagnosis import check_loopback_publishing

    check = check_loopback_publishing(engine, bind)
    assert check.status == status
    if status == "WARN":
        assert "moby#45610" in check.detail
        assert "iptables -t raw -I PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP" in check.fix
