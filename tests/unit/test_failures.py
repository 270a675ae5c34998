import re

import pytest

from devkit.compose import docker_failure
from devkit.errors import CommandFailed, DockerUnavailable, ImageMissing, PortInUse
from devkit.playbook import failure_cause, host_causes, parse_recap, playbook_failed

from phrases import line_with

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("output", "kind", "fragment"),
    [
        (
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
            DockerUnavailable,
            "not running",
        ),
        (
            "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock",
            DockerUnavailable,
            "no permission",
        ),
        (
            "Error response from daemon: No such image: devkit/postgres:16-bookworm",
            ImageMissing,
            "devkit/postgres:16-bookworm",
        ),
        (
            "Error response from daemon: driver failed programming external connectivity on endpoint x: "
            "Bind for 127.0.0.1:5432 failed: port is already allocated",
            PortInUse,
            "5432",
        ),
        ("something else entirely", CommandFailed, "something else entirely"),
    ],
)
def test_docker_output_becomes_a_cause_and_a_fix(output, kind, fragment):
    error = docker_failure(output)
    assert isinstance(error, kind)
    assert fragment in error.cause
    assert error.hint


def test_recap_sums_hosts():
    output = (
        "PLAY RECAP ****\n"
        "localhost                  : ok=47   changed=0    unreachable=0    failed=0    skipped=27\n"
        "web1 : ok=3 changed=2 unreachable=0 failed=0\n"
    )
    assert parse_recap(output) == (50, 2)


def test_failure_cause_prefers_stderr():
    lines = [
        "TASK [x] ***\n",
        "fatal: [localhost]: FAILED! => \n",
        "    msg: non-zero return code\n",
        "    stderr: 'ulimit: error setting limit'\n",
    ]
    assert failure_cause(lines) == "ulimit: error setting limit"
    assert failure_cause(["ok: [localhost]\n"]) == ""


def test_the_fix_a_module_of_the_kit_gave_is_the_fix_shown():
    """A role runs a module of the kit (devkit.wal_level, devkit.dbroles) that prints `error:`
    and `  fix:`; Ansible's YAML callback shows its stderr as a literal block."""
    lines = [
        "fatal: [localhost]: FAILED! => \n",
        "    msg: non-zero return code\n",
        "    rc: 1\n",
        "    stderr: |-\n",
        "        error: PostgreSQL would not start at wal_level minimal: the slot needs replica\n",
        "          fix: set devkit.postgres_wal_level: replica and run again\n",
        "    stderr_lines: <omitted>\n",
    ]
    failed = playbook_failed("dev.yml", lines, 2)
    assert failed.cause == (
        "ansible-playbook dev.yml failed: PostgreSQL would not start at wal_level minimal: "
        "the slot needs replica"
    )
    assert failed.hint == "set devkit.postgres_wal_level: replica and run again"
    assert "read the failed task above" in playbook_failed("dev.yml", lines[:3], 2).hint


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:pa%zzss-secret@127.0.0.1:5432/app_db",  # libpq: "invalid percent-encoded token"
        "postgresql+asyncpg://app:pa%-secret@127.0.0.1:5432/app_db",
        "postgresql://app:pa-secret@127.0.0.1:notaport/app_db",
        "mysql://app:pa-secret@127.0.0.1/app_db",
    ],
)
def test_a_malformed_database_url_is_refused_without_showing_it(url):
    """Was: psycopg2's "invalid dsn" error, with the password in it, as a traceback."""
    from devkit.backup.target import resolve_target
    from devkit.errors import SettingsError

    with pytest.raises(SettingsError) as raised:
        resolve_target({}, environ={"DATABASE_URL": url})
    assert "secret" not in raised.value.render()
    line_with(raised.value.cause, "DATABASE_URL", "postgresql://")


def test_a_connection_string_libpq_cannot_parse_is_not_echoed():
    from devkit.backup.session import BackupError, connect
    from devkit.backup.target import Target

    with pytest.raises(BackupError) as raised:
        connect(Target("host=127.0.0.1 password='unterminated-secret", "127.0.0.1", "db"))
    assert "secret" not in raised.value.render()


def test_failure_cause_finds_the_error_line_of_a_commands_output():
    lines = [
        "fatal: [localhost]: FAILED! => changed=true\n",
        "    msg: non-zero return code\n",
        "    rc: 1\n",
        "    stderr: ''\n",
        "    stdout: |-\n",
        "        I: Checking Release signature\n",
        "        E: Release signed by unknown key (key id F8D2585B8783D481)\n",
        "           The specified keyring may be incorrect or out of date.\n",
    ]
    assert failure_cause(lines) == "E: Release signed by unknown key (key id F8D2585B8783D481)"


# Recorded on 2026-12-01 from `invoke provision --inventory inventories/ci --limit devkit-ci-1
# --check` under `script` (a terminal: Ansible colours its output), and from a run where
# devkit-ci-2 was stopped (ansible-core 2.19, the YAML callback of ansible.cfg).
COLOURED_RECAP = (
    "PLAY RECAP *********************************************************************\r\n"
    "\x1b[0;32mdevkit-ci-1\x1b[0m                : \x1b[0;32mok=49  \x1b[0m changed=0    "
    "unreachable=0    failed=0    \x1b[0;36mskipped=44  \x1b[0m rescued=0    ignored=0   \r\n"
    "\x1b[0;33mdevkit-ci-2\x1b[0m                : \x1b[0;32mok=12  \x1b[0m "
    "\x1b[0;33mchanged=3   \x1b[0m unreachable=0    failed=0    skipped=0    rescued=0    ignored=0\r\n"
)
UNREACHABLE = (
    "TASK [Gathering Facts] *********************************************************\n"
    "\x1b[1;31mfatal: [devkit-ci-2]: UNREACHABLE! => changed=false \x1b[0m\n"
    "\x1b[1;31m  msg: 'Task failed: Data could not be sent to remote host \"127.0.0.1\". Make sure this host can be reached over ssh: ssh: connect to host 127.0.0.1 port 2222: Connection refused'\x1b[0m\n"
    "\x1b[1;31m  unreachable: true\x1b[0m\n"
    "ok: [devkit-ci-1]\n"
)


def test_coloured_output_is_parsed_as_plain_output():
    from devkit.playbook import host_causes, plain, recap_by_host

    # Without the colours' removal, neither host is found (was: "no host ... matched").
    assert recap_by_host(COLOURED_RECAP) == {}
    hosts = recap_by_host(plain(COLOURED_RECAP))
    assert {h: (c["ok"], c["changed"]) for h, c in hosts.items()} == {
        "devkit-ci-1": (49, 0),
        "devkit-ci-2": (12, 3),
    }
    assert parse_recap(plain(COLOURED_RECAP)) == (61, 3)
    causes = host_causes(plain(UNREACHABLE))
    assert list(causes) == ["devkit-ci-2"]
    assert causes["devkit-ci-2"].endswith("port 2222: Connection refused")


def test_the_devkit_command_runs_every_task_from_any_directory(tmp_path, run_devkit):
    """`devkit` (devkit/cli.py) is the kit's tasks anywhere, with Invoke's settings handling:
    the kit's invoke.yaml and INVOKE_DEVKIT_* as in the kit's directory."""
    listed = run_devkit("--list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    for name in ("setup", "up", "apps", "db.backup", "db.psql", "vscode.install"):
        assert re.search(rf"^\s+{re.escape(name)}\s", listed.stdout, re.M), name
    bad = run_devkit("db.list", cwd=tmp_path, env={"INVOKE_DEVKIT_BACKUP_MAX_LINE_MB": "lots"})
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    line_with(bad.stderr, "INVOKE_DEVKIT_BACKUP_MAX_LINE_MB", "environment")


def test_vscode_hooks_for_an_app_never_set_up_are_refused_before_anything_is_written(
    tmp_path, run_devkit
):
    result = run_devkit("vscode.install", "--app-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"error: {tmp_path} is not set up" in result.stderr
    assert f"fix: run `devkit setup --app-dir {tmp_path}`" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["devkit", "scripts/devkit"])
@pytest.mark.parametrize(
    ("args", "cause"),
    [
        (["down", "--servce", "redis"], "No idea what '--servce' is!"),
        (["db.restor", "backup.gz"], "No idea what 'db.restor' is!"),
        (["db.restore"], "'db.restore' did not receive required positional arguments: 'file'"),
        (["logs", "--tail"], "--tail needs a value"),
    ],
)
def test_a_command_line_devkit_cannot_parse_is_a_bad_argument(tmp_path, command, args, cause):
    """What Invoke's parser refuses ends as every bad argument does: cause, fix, exit 2 (Invoke
    alone printed the cause and exited 1), by the README's `scripts/devkit` too (was Invoke's
    bare line and 1). Nothing runs: the parser stops first."""
    import subprocess
    import sys
    from pathlib import Path

    from devkit.paths import KIT_ROOT

    devkit = Path(sys.executable).with_name("devkit") if command == "devkit" else KIT_ROOT / command
    refused = subprocess.run(
        [devkit, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode == 2
    assert refused.stderr == (
        f"error: {cause}\n"
        "  fix: `devkit --list` lists the tasks, `devkit --help TASK` a task's arguments and flags\n"
    )


def test_no_task_takes_h_for_one_of_its_flags():
    """-h asks for help: no task's flag shadows it (--hook, --hold)."""
    from devkit.tasks import namespace

    ns = namespace()
    taken = [
        f"{name}: {arg.names}"
        for name in ns.task_names
        for arg in ns[name].get_arguments()
        if "h" in arg.names
    ]
    assert taken == []


# `devkit provision` of inventories/ci with devkit_postgres_port: 99999 in host_vars/devkit-ci-1.yml
# and devkit_redis_port: 'abc' in host_vars/devkit-ci-2.yml: site.yml's settings check, as
# ansible-core 2.19.14 printed it on this machine (2026-12-05), from its first PLAY to the recap.
TWO_HOSTS_TWO_CAUSES = """\
PLAY [Check every server's settings] *******************************************

TASK [Require valid settings, and the passwords from the vault] ****************
[ERROR]: Task failed: Action failed: devkit_redis_port='abc': Input should be a valid integer, unable to parse string as an integer; fix it in the inventory (host_vars/devkit-ci-2.yml or group_vars/servers; passwords in group_vars/servers/vault.yml, see README "Provisioning servers")
Origin: /work/main/playbooks/site.yml:13:7

11   any_errors_fatal: true
12   tasks:
13     - name: Require valid settings, and the passwords from the vault
         ^ column 7

fatal: [devkit-ci-2]: FAILED! =>
    assertion: __problems | length == 0
    changed: false
    evaluated_to: false
    msg: 'devkit_redis_port=''abc'': Input should be a valid integer, unable to parse
        string as an integer; fix it in the inventory (host_vars/devkit-ci-2.yml or group_vars/servers;
        passwords in group_vars/servers/vault.yml, see README "Provisioning servers")'
[ERROR]: Task failed: Action failed: devkit_postgres_port=99999: Input should be less than or equal to 65535; fix it in the inventory (host_vars/devkit-ci-1.yml or group_vars/servers; passwords in group_vars/servers/vault.yml, see README "Provisioning servers")
Origin: /work/main/playbooks/site.yml:13:7

11   any_errors_fatal: true
12   tasks:
13     - name: Require valid settings, and the passwords from the vault
         ^ column 7

fatal: [devkit-ci-1]: FAILED! =>
    assertion: __problems | length == 0
    changed: false
    evaluated_to: false
    msg: 'devkit_postgres_port=99999: Input should be less than or equal to 65535; fix
        it in the inventory (host_vars/devkit-ci-1.yml or group_vars/servers; passwords
        in group_vars/servers/vault.yml, see README "Provisioning servers")'

"""


def test_each_hosts_line_carries_its_own_cause():
    """Ansible prints a failure's [ERROR] summary before the host's own record: the summary
    after devkit-ci-2's record is devkit-ci-1's (was: ci-2's line named ci-1's port)."""
    causes = host_causes(TWO_HOSTS_TWO_CAUSES)
    assert sorted(causes) == ["devkit-ci-1", "devkit-ci-2"]
    assert causes["devkit-ci-1"].startswith("devkit_postgres_port=99999: ")
    assert causes["devkit-ci-2"].startswith("devkit_redis_port='abc': ")


@pytest.mark.parametrize("task", ["provision", "db.restore-s3", "db.restore", "setup"])
def test_help_works_after_any_task(tmp_path, task):
    """`devkit TASK --help`: the task's help, also for a task whose argument has no default (was:
    "no inventory at --help", "'--help' is not a backup name")."""
    import subprocess
    import sys
    from pathlib import Path

    devkit = Path(sys.executable).with_name("devkit")
    for flag in ("--help", "-h"):
        shown = subprocess.run(
            [devkit, task, flag], cwd=tmp_path, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(f"Usage: devkit [--core-opts] {task} ")


def test_the_quiet_view_is_one_line_per_task_that_changed_or_failed():
    """provision's default output (devkit/playbook.py's Quiet) of the recorded two-host run
    above, and of result lines in Ansible's shapes (a loop's items, ok lines, a debug task's
    warning)."""
    from devkit.playbook import Quiet

    shown: list[str] = []
    view = Quiet(shown.append)
    for line in TWO_HOSTS_TWO_CAUSES.splitlines():
        view.line(line)
    view.flush()
    assert shown == [
        "failed: Require valid settings, and the passwords from the vault (devkit-ci-2, devkit-ci-1)\n"
    ]
    shown.clear()
    for line in [
        "TASK [docker : Install the engine and Compose v2] ***********************************",
        "changed: [web1]",
        "changed: [web2]",
        "TASK [kit : Make the kit's directories] **********************************************",
        "changed: [web1] => (item=/opt/devkit)",
        "changed: [web1] => (item=/opt/devkit/.archive)",
        "ok: [web2] => (item=/opt/devkit)",
        "TASK [Say when the server's memory is tight] ******************************************",
        "ok: [pi] => ",
        "    msg: 'warning: pi has 906 MiB of memory: PostgreSQL gets 112 MiB'",
        # Folded by the YAML callback (recorded: `provision --check --verbose` on a fresh host).
        "TASK [docker : Say that provision would start the daemon, and that --check ends here for this host] ***",
        "changed: [devkit-ci-1] => ",
        "    msg: 'warning: devkit-ci-1: the Docker daemon is not running (not installed yet):",
        "        provision starts it; --check cannot tell what the images, the kit and the stack",
        "        would change before it''s running'",
        "",
        "PLAY RECAP *********************************************************************",
    ]:
        view.line(line)
    view.flush()
    assert shown == [
        "changed: Install the engine and Compose v2 (web1, web2)\n",
        "changed: Make the kit's directories (web1)\n",
        "warning: pi has 906 MiB of memory: PostgreSQL gets 112 MiB\n",
        "warning: devkit-ci-1: the Docker daemon is not running (not installed yet): provision "
        "starts it; --check cannot tell what the images, the kit and the stack would change "
        "before it's running\n",
        "changed: Say that provision would start the daemon, and that --check ends here for "
        "this host (devkit-ci-1)\n",
    ]


def test_a_host_gone_silent_is_named_so():
    """The line Ansible 2.19 gave for devkit-ci-1 paused mid-provision (the fleet's
    test_a_host_that_stops_answering_..., CI run of 2026-12-05): ssh said nothing after
    "over ssh:" through the shared connection, after its keep-alives went unanswered."""
    from devkit.provisioning import keepalive_seconds, silent

    said = silent(
        'Task failed: Data could not be sent to remote host "127.0.0.1". Make sure this host '
        "can be reached over ssh:"
    )
    assert said.startswith(f"no answer for {keepalive_seconds()} s") and keepalive_seconds() == 30
    refused = "ssh: connect to host 127.0.0.1 port 60011: Connection refused"
    assert silent(refused) == refused
    # The same pause met by a new connection (a later run): its banner never came.
    from devkit.provisioning import connect_seconds

    banner = silent("Connection timed out during banner exchange")
    assert banner.startswith(f"no answer for {connect_seconds()} s") and connect_seconds() == 10


def test_serial_takes_a_number_of_hosts_or_a_share_of_them():
    """`provision --serial`: what Ansible's `serial` takes, else exit 2 before anything runs."""
    from devkit.errors import BadArgument
    from devkit.provisioning import serial_value

    assert serial_value("1") == 1 and serial_value(" 3 ") == 3
    assert serial_value("25%") == "25%" and serial_value("100%") == "100%"
    for bad in ("0", "0%", "101%", "-1", "two", "1.5", "", "%", "5 %x"):
        with pytest.raises(BadArgument) as refused:
            serial_value(bad)
        assert refused.value.exit_code == 2 and "--serial 1 or --serial 25%" in refused.value.hint
