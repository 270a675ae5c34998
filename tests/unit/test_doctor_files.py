"""doctor's checks that read files only: WSL2 forwarding, the env file's mode, disk space."""

import pytest

from devkit import diagnosis as doctor

pytestmark = pytest.mark.unit


WSL2 = "5.15.153.1-microsoft-standard-WSL2"
# What the Windows side prints through interop. cmd.exe: `echo %USERPROFILE%`. powershell.exe:
# devkit.windows.PORT_OWNERS, whose last step is ConvertTo-Csv -NoTypeInformation (Microsoft's
# reference: a quoted header, one quoted line per object), with Windows' CRLF line ends. A
# PostgreSQL installed on Windows listens on 0.0.0.0 and :: (microsoft/WSL#8353); WSL's
# forwarding is wslrelay.exe on 127.0.0.1.
WINDOWS_POSTGRES = (
    '"LocalAddress","LocalPort","OwningProcess","Process"\r\n'
    '"::","5432","5012","postgres"\r\n'
    '"0.0.0.0","5432","5012","postgres"\r\n'
    '"127.0.0.1","6379","3880","wslrelay"\r\n'
)
ONLY_RELAY = (
    '"LocalAddress","LocalPort","OwningProcess","Process"\r\n'
    '"127.0.0.1","5432","3880","wslrelay"\r\n'
    '"127.0.0.1","6379","3880","wslrelay"\r\n'
)


def fake_proc(tmp_path, release: str, listeners: str = ONLY_RELAY, interop: bool = True):
    """The host files of a machine with this kernel string, nothing of Docker Desktop, and
    (`interop`) Windows' cmd.exe and powershell.exe faked on its PATH."""
    from devkit.wsl import HostFiles

    (tmp_path / "osrelease").write_text(release + "\n")
    bin_dir = tmp_path / "windows-bin"
    bin_dir.mkdir(exist_ok=True)
    if interop:
        for name, output in (("cmd.exe", "C:\\Users\\taro\r\n"), ("powershell.exe", listeners)):
            tool = bin_dir / name
            tool.write_bytes(b"#!/bin/sh\ncat <<'EOF'\n" + output.encode() + b"EOF\n")
            tool.chmod(0o755)
    return HostFiles(
        osrelease=tmp_path / "osrelease",
        windows_drives=tmp_path / "mnt",
        desktop_dir=tmp_path / "mnt/wsl/docker-desktop",
        dpkg_status=tmp_path / "status",
        wsl_conf=tmp_path / "wsl.conf",
        path=f"{bin_dir}:/usr/bin:/bin",
    )


def wslconfig(tmp_path, text: str, user: str = "taro", encoding: str = "utf-8"):
    profile = tmp_path / "mnt" / "c" / "Users" / user
    profile.mkdir(parents=True, exist_ok=True)
    (profile / ".wslconfig").write_bytes(text.encode(encoding))


def test_plain_linux_has_nothing_to_forward(tmp_path):
    check = doctor.check_wsl(fake_proc(tmp_path, "6.1.0-13-amd64"))
    assert check.status == doctor.OK and "not WSL" in check.detail


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_wsl2_with_forwarding_turned_off_warns(tmp_path, encoding):
    """The current Windows user's .wslconfig, also with a byte order mark or in UTF-16."""
    host = fake_proc(tmp_path, WSL2)
    wslconfig(tmp_path, "[wsl2]\nlocalhostForwarding=false\n", encoding=encoding)
    check = doctor.check_wsl(host)
    assert check.status == doctor.WARN, check
    assert "/mnt/c/Users/taro/.wslconfig" in check.detail
    assert "localhostForwarding=true" in check.fix and "wsl --shutdown" in check.fix


def test_only_the_current_users_wslconfig_counts(tmp_path):
    """Was: every user's .wslconfig under /mnt/c/Users was read."""
    host = fake_proc(tmp_path, WSL2)
    wslconfig(tmp_path, "[wsl2]\nlocalhostForwarding=false\n", user="hanako")
    assert doctor.check_wsl(host).status == doctor.OK


def test_wsl2_mirrored_networking_is_fine_with_its_caveat(tmp_path):
    host = fake_proc(tmp_path, WSL2)
    wslconfig(tmp_path, "[wsl2]\nnetworkingMode=mirrored\nlocalhostForwarding=false\n")
    check = doctor.check_wsl(host)
    assert check.status == doctor.OK and "microsoft/WSL#10494" in check.detail


def stack_on(pg_port: int = 5432, redis_port: int = 6379):
    from types import SimpleNamespace

    return SimpleNamespace(pg_port=pg_port, redis_port=redis_port)


def test_a_windows_postgresql_on_the_port_is_named_with_the_fix(tmp_path):
    """A PostgreSQL installed on Windows on 5432 silently gets the Windows app's connections
    (microsoft/WSL#8353): doctor names it, its pid, and the two ways out."""
    host = fake_proc(tmp_path, WSL2, listeners=WINDOWS_POSTGRES)
    checks = {check.name: check for check in doctor.check_windows_ports(stack_on(), host)}
    postgres = checks["windows port 5432"]
    assert postgres.status == doctor.FAIL
    assert "held by postgres (pid 5012" in postgres.detail
    assert "Stop-Process -Id 5012" in postgres.fix
    assert "INVOKE_DEVKIT_POSTGRES_PORT=5433" in postgres.fix
    assert checks["windows port 6379"].status == doctor.OK


def test_wsls_own_forwarding_is_fine_and_no_interop_is_said(tmp_path):
    host = fake_proc(tmp_path, WSL2)
    assert all(c.status == doctor.OK for c in doctor.check_windows_ports(stack_on(), host))
    bare = (
        fake_proc(tmp_path / "bare", WSL2, interop=False)
        if (tmp_path / "bare").mkdir() is None
        else None
    )
    [check] = doctor.check_windows_ports(stack_on(), bare)
    assert check.status == doctor.SKIP and "interop" in check.detail
    assert doctor.check_windows_ports(stack_on(), fake_proc(tmp_path, "6.1.0-13-amd64")) == []


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
