"""doctor's checks that read files only: WSL2 forwarding, the env file's mode, disk space."""

import pytest

from devkit import diagnosis as doctor
from devkit import diagnosis_wsl as doctor_wsl
from devkit import windows

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
    return windows.windows_facts_of([5432, 6379], host)


def wslconfig(tmp_path, text: str, user: str = "taro", encoding: str = "utf-8"):
    profile = tmp_path / "mnt" / "c" / "Users" / user
    profile.mkdir(parents=True, exist_ok=True)
    (profile / ".wslconfig").write_bytes(text.encode(encoding))


def test_plain_linux_has_nothing_to_forward(tmp_path):
    host = fake_proc(tmp_path, "6.1.0-13-amd64")
    assert facts(host) is None
    check = doctor_wsl.check_wsl(host, None)
    assert check.status == doctor.OK and "not WSL" in check.detail


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16"])
def test_wsl2_with_forwarding_turned_off_warns(tmp_path, encoding):
    """The current Windows user's .wslconfig, also with a byte order mark or in UTF-16."""
    host = fake_proc(tmp_path, WSL2)
    wslconfig(tmp_path, "[wsl2]\nlocalhostForwarding=false\n", encoding=encoding)
    check = doctor_wsl.check_wsl(host, facts(host))
    assert check.status == doctor.WARN, check
    assert "/mnt/c/Users/taro/.wslconfig" in check.detail
    assert "localhostForwarding=true" in check.fix and "wsl --shutdown" in check.fix


def test_only_the_current_users_wslconfig_counts(tmp_path):
    """Was: every user's .wslconfig under /mnt/c/Users was read."""
    host = fake_proc(tmp_path, WSL2)
    wslconfig(tmp_path, "[wsl2]\nlocalhostForwarding=false\n", user="hanako")
    assert doctor_wsl.check_wsl(host, facts(host)).status == doctor.OK


def test_wsl2_mirrored_networking_is_fine_with_its_caveat(tmp_path):
    host = fake_proc(tmp_path, WSL2, windows_answer(WINDOWS_POSTGRES))
    wslconfig(tmp_path, "[wsl2]\nnetworkingMode=mirrored\nlocalhostForwarding=false\n")
    check = doctor_wsl.check_wsl(host, facts(host))
    assert check.status == doctor.OK and "microsoft/WSL#10494" in check.detail
    # In mirrored mode nothing on Windows may hold the port (no wslrelay there either).
    statuses = [c.status for c in doctor_wsl.check_windows_ports(stack_on(), facts(host), host)]
    assert statuses == [doctor.FAIL, doctor.FAIL]


def stack_on(pg_port: int = 5432, redis_port: int = 6379):
    from types import SimpleNamespace

    return SimpleNamespace(ports={"postgres": pg_port, "redis": redis_port})


def test_a_windows_postgresql_on_the_port_is_named_with_the_fix(tmp_path):
    """A PostgreSQL installed on Windows on 5432 silently gets the Windows app's connections
    (microsoft/WSL#8353): doctor names it, its pid, and the two ways out."""
    host = fake_proc(tmp_path, WSL2, windows_answer(WINDOWS_POSTGRES))
    found = facts(host)
    checks = {
        check.name: check for check in doctor_wsl.check_windows_ports(stack_on(), found, host)
    }
    postgres = checks["windows port 5432"]
    assert postgres.status == doctor.FAIL
    assert "held by postgres (pid 5012" in postgres.detail
    assert "Stop-Process -Id 5012" in postgres.fix
    assert "INVOKE_DEVKIT_POSTGRES_PORT=5433" in postgres.fix
    assert checks["windows port 6379"].status == doctor.OK


def test_wsls_own_forwarding_is_fine_an_unreachable_port_warns_no_interop_is_said(tmp_path):
    host = fake_proc(tmp_path, WSL2)
    assert all(
        c.status == doctor.OK for c in doctor_wsl.check_windows_ports(stack_on(), facts(host), host)
    )
    cut = fake_proc(tmp_path / "cut", WSL2, windows_answer(reach={"5432": False, "6379": True}))
    statuses = [c.status for c in doctor_wsl.check_windows_ports(stack_on(), facts(cut), cut)]
    assert statuses == [doctor.WARN, doctor.OK]
    bare = fake_proc(tmp_path / "bare", WSL2, interop=False)
    assert facts(bare) is None
    [check] = doctor_wsl.check_windows_ports(stack_on(), None, bare)
    assert check.status == doctor.SKIP and "interop" in check.detail
    assert doctor_wsl.check_wsl(bare, None).status == doctor.SKIP


def test_a_clock_behind_windows_after_sleep_warns(tmp_path):
    host = fake_proc(tmp_path, WSL2)
    [ok] = doctor_wsl.check_clock(facts(host), now=NOW + 5)
    assert ok.status == doctor.OK
    [late] = doctor_wsl.check_clock(facts(host), now=NOW - 600)
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


def answering(tmp_path, raw: bytes, where: str = "windows-bin") -> None:
    """powershell.exe (at WHERE under tmp_path) that records its argv and stdin, and prints RAW."""
    tool = tmp_path / where / "powershell.exe"
    tool.parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "answer").write_bytes(raw)
    tool.write_text(
        "#!/bin/sh\n"
        f"printf '%s\\n' \"$@\" > {tmp_path}/argv\n"
        f"cat > {tmp_path}/stdin\n"
        f"cat {tmp_path}/answer\n"
    )
    tool.chmod(0o755)


def test_the_script_reaches_powershell_on_stdin(tmp_path, monkeypatch):
    """powershell.exe gets the script on stdin (`-Command -`), not as -EncodedCommand, which
    endpoint-security rules flag (SigmaHQ "Suspicious PowerShell Encoded Command"): ASCII, one
    complete statement per line (stdin is read line by line, as if typed), and the output set
    to UTF-8 inside it."""
    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu-24.04")
    host = fake_proc(tmp_path, WSL2)
    answering(tmp_path, windows_answer().encode())
    assert facts(host) is not None
    argv = (tmp_path / "argv").read_text().splitlines()
    assert argv == ["-NoProfile", "-NonInteractive", "-Command", "-"]
    script = (tmp_path / "stdin").read_bytes().decode("ascii")
    assert "$ports = @(5432,6379)" in script and "-eq 'Ubuntu-24.04'" in script
    assert "[Console]::OutputEncoding = New-Object System.Text.UTF8Encoding $false" in script
    for line in script.splitlines():
        assert not line.rstrip().endswith(("{", "|", "(")), line
        assert line.count("{") == line.count("}"), line
    assert script.endswith("\n\n")  # a blank line ends the input as typed


# PowerShell 5.1's ConvertTo-Json (JavaScriptSerializer): non-ASCII as it is, a backslash
# doubled, and <, >, ' and & written \u003c, \u003e, \u0027, \u0026 (PowerShell/PowerShell#7693,
# mkht/pspm#52); -Compress: no spaces; the console adds CRLF.
def ps51_answer(profile: str) -> str:
    escaped = profile.replace("\\", "\\\\").replace("'", "\\u0027").replace("&", "\\u0026")
    base = windows_answer().replace('"C:\\\\Users\\\\taro"', f'"{escaped}"')
    assert escaped in base
    return base


@pytest.mark.parametrize(
    "profile, encoding",
    [
        ("C:\\Users\\田中", "utf-8"),  # what the script asks for
        ("C:\\Users\\能登", "utf-8"),
        ("C:\\Users\\能登", "cp932"),  # a console that kept CP932: 能 is 0x94 0x5C
        ("C:\\Users\\ソフト開発", "cp932"),  # ソ is 0x83 0x5C
        ("C:\\Users\\o'brien & co", "utf-8"),
    ],
)
def test_a_japanese_profile_is_read_whatever_the_code_page(tmp_path, profile, encoding):
    """Was: the output read as UTF-8 with replacements: 田中 in CP932 made the profile
    unreadable, and a trail byte 0x5C (能, ソ) escaped the JSON's next character, so every
    Windows check said "interop is off"."""
    raw = ps51_answer(profile).encode(encoding)
    if encoding == "cp932":
        assert b"\x5c\x5c" in raw.split(b"Users")[1][:12] or b"\\" in raw  # the trail byte
    host = fake_proc(tmp_path, WSL2)
    answering(tmp_path, raw)
    found = facts(host)
    assert found is not None and found.profile == profile
    user = profile.split("\\")[-1]
    wslconfig(tmp_path, "[wsl2]\nlocalhostForwarding=false\n", user=user)
    assert doctor_wsl.check_wsl(host, found).status == doctor.WARN


def test_powershell_is_found_where_windows_keeps_it(tmp_path):
    """`appendWindowsPath = false` leaves Windows' directories off the PATH (was: reported as
    "interop is off"): powershell.exe is taken from /mnt/c/Windows/System32/…."""
    host = fake_proc(tmp_path, WSL2, interop=False)
    assert facts(host) is None
    answering(tmp_path, windows_answer().encode(), "mnt/c/Windows/System32/WindowsPowerShell/v1.0")
    found = facts(host)
    assert found is not None and found.profile == "C:\\Users\\taro"


def desktop_engine(tmp_path) -> None:
    """Docker Desktop's WSL integration: `docker` links into its shared directory."""
    cli = tmp_path / "mnt/wsl/docker-desktop/cli-tools/usr/bin/docker"
    cli.parent.mkdir(parents=True)
    cli.write_text("#!/bin/sh\n")
    cli.chmod(0o755)
    (tmp_path / "windows-bin" / "docker").symlink_to(cli)


@pytest.mark.parametrize("desktop", [True, False])
def test_docker_desktops_backend_holds_the_ports_when_it_is_the_engine(tmp_path, desktop):
    """With Docker Desktop as the engine its backend publishes the stack's ports on Windows:
    not an intruder (was: FAIL with a Stop-Process of Docker as the fix)."""
    backend = [{**item, "process": "com.docker.backend", "pid": 7311} for item in RELAY]
    host = fake_proc(tmp_path, WSL2, windows_answer(backend))
    if desktop:
        desktop_engine(tmp_path)
    checks = doctor_wsl.check_windows_ports(stack_on(), facts(host), host)
    statuses = {check.status for check in checks}
    assert statuses == ({doctor.OK} if desktop else {doctor.FAIL}), checks


def test_setup_skips_the_ports_a_windows_program_holds(tmp_path):
    """Was: setup picked ports from the WSL side only, and a PostgreSQL service on Windows on
    5432 silently took the Windows tools' connections: the ports Windows programs hold are
    taken (WSL's own relay is not one of them), and named."""
    from devkit.stacks import held_on_windows, pick_ports

    host = fake_proc(tmp_path, WSL2, windows_answer(WINDOWS_POSTGRES))
    held = held_on_windows([5432, 6379], host)
    assert set(held) == {5432} and held[5432].process == "postgres"
    assert 5432 not in pick_ports("127.0.0.1", set(held))
    assert held_on_windows([5432], fake_proc(tmp_path / "linux", "6.1.0-13-amd64")) == {}
