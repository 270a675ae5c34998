"""doctor's checks that read files only: WSL2 forwarding, the env file's mode, disk space."""

import pytest

from devkit import diagnosis as doctor

pytestmark = pytest.mark.unit


WSL2 = "5.15.153.1-microsoft-standard-WSL2"
NOW = 1764633600
RELAY = [
    {"address": "127.0.0.1", "port": 5432, "pid": 3880, "process": "wslrelay"},
    {"address": "127.0.0.1", "port": 6379, "pid": 3880, "process": "wslrelay"},
]
# A PostgreSQL installed on Windows listens on 0.0.0.0 and :: (microsoft/WSL#8353).
WINDOWS_POSTGRES = [
    {"address": "::", "port": 5432, "pid": 5012, "process": "postgres"},
    {"address": "0.0.0.0", "port": 5432, "pid": 5012, "process": "postgres"},
    RELAY[1],
]


def windows_answer(listeners=RELAY, reach=None, now=NOW) -> str:
    """What powershell.exe prints for devkit.windows.FACTS: ConvertTo-Json -Compress of its
    object (Microsoft's ConvertTo-Json reference), with Windows' CRLF."""
    import json

    return (
        json.dumps(
            {
                "profile": "C:\\Users\\taro",
                "listeners": listeners,
                "reach": reach or {"5432": True, "6379": True},
                "basePath": "C:\\Users\\taro\\AppData\\Local\\Packages\\"
                "CanonicalGroupLimited.Ubuntu_79rhkp1fndgsc\\LocalState",
                "now": now,
            },
            separators=(",", ":"),
        )
        + "\r\n"
    )


def fake_proc(tmp_path, release: str, answer: str | None = None, interop: bool = True):
    """The host files of a machine with this kernel string, nothing of Docker Desktop, and
    (`interop`) Windows' powershell.exe faked on its PATH, printing `answer`."""
    from devkit.wsl import HostFiles

    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "osrelease").write_text(release + "\n")
    bin_dir = tmp_path / "windows-bin"
    bin_dir.mkdir(exist_ok=True)
    if interop:
        tool = bin_dir / "powershell.exe"
        text = answer if answer is not None else windows_answer()
        tool.write_bytes(b"#!/bin/sh\ncat <<'EOF'\n" + text.encode() + b"EOF\n")
        tool.chmod(0o755)
    (tmp_path / "mnt" / "c" / "Users" / "taro").mkdir(parents=True, exist_ok=True)
    return HostFiles(
        osrelease=tmp_path / "osrelease",
        windows_drives=tmp_path / "mnt",
        desktop_dir=tmp_path / "mnt/wsl/docker-desktop",
        dpkg_status=tmp_path / "status",
        wsl_conf=tmp_path / "wsl.conf",
        path=f"{bin_dir}:/usr/bin:/bin",
    )


def facts(host):
    return doctor.windows_facts_of([5432, 6379], host)


def wslconfig(tmp_path, text: str, user: str = "taro", encoding: str = "utf-8"):
    profile = tmp_path / "mnt" / "c" / "Users" / user
    profile.mkdir(parents=True, exist_ok=True)
    (profile / ".wslconfig").write_bytes(text.encode(encoding))


def test_plain_linux_has_nothing_to_forward(tmp_path):
    host = fake_proc(tmp_path, "6.1.0-13-amd64")
    assert facts(host) is None
    check = doctor.check_wsl(host, None)
    assert check.status == doctor.OK and "not WSL" in check.detail


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_wsl2_with_forwarding_turned_off_warns(tmp_path, encoding):
    """The current Windows user's .wslconfig, also with a byte order mark or in UTF-16."""
    host = fake_proc(tmp_path, WSL2)
    wslconfig(tmp_path, "[wsl2]\nlocalhostForwarding=false\n", encoding=encoding)
    check = doctor.check_wsl(host, facts(host))
    assert check.status == doctor.WARN, check
    assert "/mnt/c/Users/taro/.wslconfig" in check.detail
    assert "localhostForwarding=true" in check.fix and "wsl --shutdown" in check.fix


def test_only_the_current_users_wslconfig_counts(tmp_path):
    """Was: every user's .wslconfig under /mnt/c/Users was read."""
    host = fake_proc(tmp_path, WSL2)
    wslconfig(tmp_path, "[wsl2]\nlocalhostForwarding=false\n", user="hanako")
    assert doctor.check_wsl(host, facts(host)).status == doctor.OK


def test_wsl2_mirrored_networking_is_fine_with_its_caveat(tmp_path):
    host = fake_proc(tmp_path, WSL2, windows_answer(WINDOWS_POSTGRES))
    wslconfig(tmp_path, "[wsl2]\nnetworkingMode=mirrored\nlocalhostForwarding=false\n")
    check = doctor.check_wsl(host, facts(host))
    assert check.status == doctor.OK and "microsoft/WSL#10494" in check.detail
    # In mirrored mode nothing on Windows may hold the port (no wslrelay there either).
    statuses = [c.status for c in doctor.check_windows_ports(stack_on(), facts(host), host)]
    assert statuses == [doctor.FAIL, doctor.FAIL]


def stack_on(pg_port: int = 5432, redis_port: int = 6379):
    from types import SimpleNamespace

    return SimpleNamespace(pg_port=pg_port, redis_port=redis_port)


def test_a_windows_postgresql_on_the_port_is_named_with_the_fix(tmp_path):
    """A PostgreSQL installed on Windows on 5432 silently gets the Windows app's connections
    (microsoft/WSL#8353): doctor names it, its pid, and the two ways out."""
    host = fake_proc(tmp_path, WSL2, windows_answer(WINDOWS_POSTGRES))
    found = facts(host)
    checks = {check.name: check for check in doctor.check_windows_ports(stack_on(), found, host)}
    postgres = checks["windows port 5432"]
    assert postgres.status == doctor.FAIL
    assert "held by postgres (pid 5012" in postgres.detail
    assert "Stop-Process -Id 5012" in postgres.fix
    assert "INVOKE_DEVKIT_POSTGRES_PORT=5433" in postgres.fix
    assert checks["windows port 6379"].status == doctor.OK


def test_wsls_own_forwarding_is_fine_an_unreachable_port_warns_no_interop_is_said(tmp_path):
    host = fake_proc(tmp_path, WSL2)
    assert all(
        c.status == doctor.OK for c in doctor.check_windows_ports(stack_on(), facts(host), host)
    )
    cut = fake_proc(tmp_path / "cut", WSL2, windows_answer(reach={"5432": False, "6379": True}))
    statuses = [c.status for c in doctor.check_windows_ports(stack_on(), facts(cut), cut)]
    assert statuses == [doctor.WARN, doctor.OK]
    bare = fake_proc(tmp_path / "bare", WSL2, interop=False)
    assert facts(bare) is None
    [check] = doctor.check_windows_ports(stack_on(), None, bare)
    assert check.status == doctor.SKIP and "interop" in check.detail
    assert doctor.check_wsl(bare, None).status == doctor.SKIP


def test_a_clock_behind_windows_after_sleep_warns(tmp_path):
    host = fake_proc(tmp_path, WSL2)
    [ok] = doctor.check_clock(facts(host), now=NOW + 5)
    assert ok.status == doctor.OK
    [late] = doctor.check_clock(facts(host), now=NOW - 600)
    assert late.status == doctor.WARN and "600 s behind" in late.detail
    assert "hwclock -s" in late.fix


def test_the_windows_drive_of_the_virtual_disk_is_where_it_is(tmp_path):
    """doctor's disk check read the virtual disk (1 TB); the drive holding it is C: here."""
    from devkit.windows import windows_path

    host = fake_proc(tmp_path, WSL2)
    assert windows_path(facts(host).base_path, host.windows_drives) == (
        tmp_path / "mnt/c/Users/taro/AppData/Local/Packages"
        / "CanonicalGroupLimited.Ubuntu_79rhkp1fndgsc/LocalState"
    )  # fmt: skip
    assert (
        windows_path("\\\\?\\D:\\WSL\\Ubuntu", host.windows_drives) == tmp_path / "mnt/d/WSL/Ubuntu"
    )
    assert windows_path("\\\\wsl.localhost\\x", host.windows_drives) is None


def test_what_windows_printed_that_is_not_its_json_counts_as_no_answer(tmp_path):
    host = fake_proc(tmp_path, WSL2, "Get-NetTCPConnection : Access is denied.\r\n")
    assert facts(host) is None


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


def test_the_script_reaches_powershell_encoded(tmp_path, monkeypatch):
    """powershell.exe gets the script as -EncodedCommand (base64 of UTF-16LE, as it documents):
    nothing for WSL's, Windows' or PowerShell's command-line quoting to change."""
    import base64

    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu-24.04")
    host = fake_proc(tmp_path, WSL2)
    tool = tmp_path / "windows-bin" / "powershell.exe"
    tool.write_bytes(
        b'#!/bin/sh\nprintf \'%s\\n\' "$@" > "$(dirname "$0")/argv"\n'
        + tool.read_bytes().split(b"\n", 1)[1]
    )
    assert facts(host) is not None
    argv = (tmp_path / "windows-bin" / "argv").read_text().splitlines()
    assert argv[:3] == ["-NoProfile", "-NonInteractive", "-EncodedCommand"]
    script = base64.b64decode(argv[3]).decode("utf-16-le")
    assert "$ports = @(5432,6379)" in script and "-eq 'Ubuntu-24.04'" in script
    assert "ConvertTo-Json" in script
