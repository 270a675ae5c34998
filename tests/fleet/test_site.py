"""playbooks/site.yml on two servers over SSH (the CI test hosts of inventories/ci): Docker
installed from Debian's packages inside them, the controller's images shipped, the kit and the
stack deployed, the backup scheduled; then `invoke verify` proves both, and a second run changes
nothing."""

import re
import shlex
import shutil
import subprocess

import pytest
import testhosts

pytestmark = [pytest.mark.ansible, pytest.mark.docker]

INVENTORY = "inventories/ci"
VAULT = ("--vault-password-file", "inventories/ci/vault-password.txt")
HOSTS = list(testhosts.HOSTS)
# The kit as the site playbook installed it on each server (inventories/ci: devkit_kit_dir).
KIT_INVOKE = "/opt/devkit/.venv/bin/invoke --search-root /opt/devkit"


def ssh(name: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR"]
    options += ["-o", "UserKnownHostsFile=/dev/null", "-i", str(testhosts.KEY)]
    return subprocess.run(
        ["ssh", *options, "-p", str(testhosts.HOSTS[name]), "root@127.0.0.1", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def vault_secrets() -> list[str]:
    """The values in inventories/ci's vault, decrypted with its password."""
    import sys

    import yaml

    shown = subprocess.run(
        [
            f"{sys.prefix}/bin/ansible-vault",
            "view",
            *VAULT,
            f"{INVENTORY}/group_vars/servers/vault.yml",
        ],
        cwd=testhosts.KIT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [str(value) for value in yaml.safe_load(shown.stdout).values()]


def recap(output: str) -> dict[str, tuple[int, int]]:
    """`invoke provision`'s closing lines: host -> (ok, changed)."""
    lines = re.findall(r"^(\S+): ok=(\d+) changed=(\d+)", output, re.MULTILINE)
    return {host: (int(ok), int(changed)) for host, ok, changed in lines}


@pytest.fixture(scope="module")
def servers():
    """Two fresh servers, built from the kit's images (`setup` or `images.build` made them). No
    stack of this machine's is needed: the fleet starts while the other worker sets up its own."""
    testhosts.up()
    yield HOSTS
    testhosts.down()


@pytest.fixture(scope="module")
def invoke(operator):
    """`invoke ARGS` from the kit's directory, as an operator runs it (no terminal)."""
    return operator.invoke


def test_an_encrypted_inventory_needs_its_vault_password(servers, invoke):
    for task in ("provision", "verify"):
        result = invoke(task, "--inventory", INVENTORY)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "group_vars/servers/vault.yml is encrypted with ansible-vault" in result.stderr
        assert "fix: pass --vault-password-file FILE" in result.stderr


def test_a_wrong_vault_password_is_named(servers, invoke, tmp_path):
    wrong = tmp_path / "wrong-password.txt"
    wrong.write_text("not-the-password\n")
    for task in ("provision", "verify"):
        result = invoke(task, "--inventory", INVENTORY, "--vault-password-file", str(wrong))
        assert result.returncode == 1, result.stdout + result.stderr
        assert "the vault password given does not open inventories/ci's vault" in result.stderr


def test_a_limit_matching_no_host_is_an_error(servers, invoke):
    # Not a pass with nothing checked: testinfra alone would skip every check and exit 0.
    for task, what in {"provision": "servers group", "verify": "hosts"}.items():
        result = invoke(task, "--inventory", INVENTORY, *VAULT, "--limit", "no-such-host")
        assert result.returncode == 1, result.stdout + result.stderr
        assert (
            f"error: --limit no-such-host matches no host of inventories/ci's {what} "
            "(its hosts: devkit-ci-1, devkit-ci-2)" in result.stderr
        )


def on_a_terminal(operator, *args, inputs=()):
    """`invoke ARGS` on a pseudo-terminal, as an operator types it: Ansible colours its output."""
    return operator.on_terminal(
        *args, inputs=inputs, extra_env={"ANSIBLE_FORCE_COLOR": "1"}, timeout=600
    )


def without_and_with_a_terminal(operator, *args) -> list[tuple[str, int]]:
    """Output and exit code of `invoke ARGS`, run piped, then on a terminal."""
    piped = operator.invoke(*args, timeout=900)
    return [(piped.stdout + piped.stderr, piped.returncode), on_a_terminal(operator, *args)]


def test_a_wrong_vault_password_typed_at_the_prompt_is_named(servers, operator):
    # Was "failed: exit code 4" on a terminal: the parsers saw colour codes.
    for task in ("provision", "verify"):
        shown, code = on_a_terminal(
            operator, task, "--inventory", INVENTORY, "--ask-vault-pass", inputs=(b"not-it\n",)
        )
        assert code == 1, shown[-3000:]
        assert "the vault password given does not open inventories/ci's vault" in shown
        assert "not-it" not in shown.split("Vault password:")[-1]


def test_bad_settings_on_one_host_change_no_host(servers, operator, tmp_path):
    """A bad inventory value is refused before any task changes anything on any host, naming
    the inventory variable and the host (was: caught mid-play, after invoke.yaml was written)."""
    inventory = tmp_path / "bad-port"
    shutil.copytree(f"{testhosts.KIT_ROOT}/{INVENTORY}", inventory)
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / "devkit-ci-2.yml").write_text("devkit_postgres_port: 99999\n")
    password = f"--vault-password-file={inventory}/vault-password.txt"
    for output, code in without_and_with_a_terminal(
        operator, "provision", "--inventory", str(inventory), password
    ):
        assert code == 1, output[-3000:]
        assert "devkit-ci-2: FAILED: devkit_postgres_port=" in output and "99999" in output
        assert "host_vars/devkit-ci-2.yml" in output and "invoke.yaml" not in output
        assert "devkit-ci-1: not changed (another host's settings were refused)" in output
        assert "no host was changed" in output
        assert "Traceback" not in output
    assert all(ssh(name, "command -v dockerd").returncode != 0 for name in servers)


def test_passwords_must_come_from_the_vault(servers, invoke, tmp_path):
    inventory = tmp_path / "no-vault"
    shutil.copytree(f"{testhosts.KIT_ROOT}/{INVENTORY}", inventory)
    (inventory / "group_vars" / "servers" / "vault.yml").unlink()
    result = invoke("provision", "--inventory", str(inventory))
    assert result.returncode == 1
    assert "must come from the inventory's vault" in result.stdout + result.stderr
    # Refused before anything was installed.
    assert all(ssh(name, "command -v dockerd").returncode != 0 for name in servers)


def test_the_examples_placeholder_passwords_are_refused(servers, invoke, tmp_path):
    """vault.yml.example's CHANGE-ME-... values are long enough for a length check (they passed
    it before): they must still be refused."""
    inventory = tmp_path / "placeholders"
    shutil.copytree(f"{testhosts.KIT_ROOT}/{INVENTORY}", inventory)
    example = testhosts.KIT_ROOT / "inventories" / "staging" / "group_vars" / "servers"
    (inventory / "group_vars" / "servers" / "vault.yml").write_text(
        (example / "vault.yml.example").read_text()
    )
    result = invoke("provision", "--inventory", str(inventory))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "is still the example's CHANGE-ME placeholder" in result.stdout + result.stderr
    assert all(ssh(name, "command -v dockerd").returncode != 0 for name in servers)


# The controller keeps one exported image set (.devkit/images); older ones are removed.
STALE_ARCHIVE = testhosts.KIT_ROOT / ".devkit" / "images" / "devkit-images-0000000000000000.tar"


@pytest.fixture(scope="module")
def first_run(servers, invoke):
    STALE_ARCHIVE.parent.mkdir(parents=True, exist_ok=True)
    STALE_ARCHIVE.write_bytes(b"an image set nobody uses any more")
    return invoke("provision", "--inventory", INVENTORY, *VAULT, timeout=1500)


def test_site_converges_on_both_hosts(first_run):
    assert first_run.returncode == 0, first_run.stdout[-3000:] + first_run.stderr
    hosts = recap(first_run.stdout)
    assert sorted(hosts) == HOSTS
    assert all(changed > 0 for _, changed in hosts.values())
    assert "failed=0" in first_run.stdout and "failed=1" not in first_run.stdout
    # no_log wherever a secret passes: neither password appears in Ansible's output.
    secrets = vault_secrets()
    assert len(secrets) == 2 and all(len(secret) >= 16 for secret in secrets)
    assert not any(secret in first_run.stdout + first_run.stderr for secret in secrets)


def test_the_controller_keeps_one_image_archive(first_run):
    archives = list(STALE_ARCHIVE.parent.glob("devkit-images-*.tar"))
    assert not STALE_ARCHIVE.exists() and len(archives) == 1


def test_docker_came_from_debian_packages(first_run, servers):
    for name in servers:
        packages = ssh(name, "dpkg-query -W -f '${Package} ${Status}\\n' docker.io docker-compose")
        assert packages.stdout.count("install ok installed") == 2, packages.stdout + packages.stderr


def test_second_run_changes_nothing(first_run, invoke):
    second = invoke("provision", "--inventory", INVENTORY, *VAULT, timeout=900)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    assert {host: changed for host, (_, changed) in recap(second.stdout).items()} == dict.fromkeys(
        HOSTS, 0
    )


def test_drift_is_shown_without_passwords_and_a_run_puts_it_back(first_run, operator, invoke):
    """Two servers drifted: on one a password edited by hand in .env.local, on the other an older
    kit (a module since dropped, its archive gone). `--check --limit` on a terminal (where Ansible
    colours its output: was "changed=0" then "error: no host matched") reports the change on that
    host only, and no_log keeps the file and its passwords out of the output; a real run puts
    both back (the kit is shipped anew)."""
    drifted, old_kit = HOSTS
    edited = ssh(
        drifted, "sed -i 's/^PGPASSWORD=.*/PGPASSWORD=drifted-by-hand-0000/' /srv/devkit/.env.local"
    )
    assert edited.returncode == 0, edited.stderr
    prepared = ssh(
        old_kit, "touch /opt/devkit/devkit/dropped_module.py && rm /opt/devkit/.archive/kit.tar.gz"
    )
    assert prepared.returncode == 0, prepared.stderr

    shown, code = on_a_terminal(
        operator, "provision", "--inventory", INVENTORY, *VAULT, "--check", "--limit", drifted
    )
    assert code == 0, shown[-3000:]
    assert "\x1b[" in shown  # Ansible did colour its output
    found = re.findall(r"^(\S+): ok=\d+ changed=(\d+) \(check mode\)\r?$", shown, re.M)
    assert [host for host, _ in found] == [drifted] and int(found[0][1]) >= 1, shown[-3000:]
    assert not any(secret in shown for secret in vault_secrets())

    repaired = invoke("provision", "--inventory", INVENTORY, *VAULT)
    assert repaired.returncode == 0, repaired.stdout[-3000:] + repaired.stderr
    assert all(changed >= 1 for _, changed in recap(repaired.stdout).values())
    assert "drifted-by-hand" not in ssh(drifted, "cat /srv/devkit/.env.local").stdout
    assert ssh(old_kit, "test -e /opt/devkit/devkit/dropped_module.py").returncode == 1
    assert ssh(old_kit, f"cd /tmp && {KIT_INVOKE} db.list").returncode == 0


def test_a_host_down_is_named_and_the_others_are_done(first_run, servers, operator, tmp_path):
    """provision and verify with one host down (its SSH port refuses): one line per host with
    its state, the cause for the unreachable one, exit 1 (verify printed 844 lines of
    tracebacks). The host stays as it is: the inventory copy points at a closed port."""
    import socket

    down = HOSTS[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    inventory = tmp_path / "one-down"
    shutil.copytree(f"{testhosts.KIT_ROOT}/{INVENTORY}", inventory)
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / f"{down}.yml").write_text(f"ansible_port: {closed}\n")
    password = f"--vault-password-file={inventory}/vault-password.txt"
    for task in ("provision", "verify"):
        for output, code in without_and_with_a_terminal(
            operator, task, "--inventory", str(inventory), password
        ):
            assert code == 1, output[-3000:]
            assert re.search(rf"^{down}: .*UNREACHABLE: .*port {closed}", output, re.M), output[
                -3000:
            ]
            assert re.search(
                rf"^{HOSTS[0]}: (ok=\d+ changed=\d+|\d+ passed, 0 failed, 0 skipped)\r?$",
                output,
                re.M,
            ), output[-3000:]
            assert "1 of 2 hosts not" in output and f"{down} (unreachable)" in output
            assert "Traceback" not in output, output[-3000:]


def test_verify_passes_on_both_hosts(first_run, servers, invoke, argv_watch):
    # Data for the backup the check runs: a table on each server, through the kit on the host.
    for name in servers:
        sql = (
            "CREATE TABLE IF NOT EXISTS fleet_probe (id int PRIMARY KEY, host text); "
            f"INSERT INTO fleet_probe VALUES (1, '{name}'), (2, '{name}') ON CONFLICT DO NOTHING"
        )
        seeded = ssh(name, f"cd /tmp && {KIT_INVOKE} db.psql -c {shlex.quote(sql)}")
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    # No password in any command line on this machine or in the hosts (was: in ssh's argv here
    # and sh's there).
    with argv_watch(vault_secrets()) as leaks:
        result = invoke("verify", "--inventory", INVENTORY, *VAULT, timeout=900)
    assert leaks == []
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr
    for name in servers:
        assert (
            f"test_postgres_16_answers_an_authenticated_query[ansible://{name}] PASSED"
            in result.stdout
        )
        assert (
            f"test_redis_7_answers_an_authenticated_ping[ansible://{name}] PASSED" in result.stdout
        )
        assert (
            f"test_running_it_once_writes_a_backup_that_verifies[ansible://{name}] PASSED"
            in result.stdout
        )
    assert "SKIPPED" not in result.stdout and "FAILED" not in result.stdout
    for name in servers:
        assert re.search(rf"^{name}: \d+ passed, 0 failed, 0 skipped$", result.stdout, re.M)
    # The backup the check produced holds the server's data.
    for name in servers:
        latest = ssh(
            name,
            f"cd /tmp && {KIT_INVOKE} db.verify "
            '"$(ls -t /srv/devkit/backups/*.backup.gz | head -n 1)"',
        )
        assert latest.returncode == 0 and "1 tables, 2 rows" in latest.stdout, (
            latest.stdout + latest.stderr
        )
    # `down --all` stops every devkit stack of a machine (here: a server's one), by project.
    host = HOSTS[0]
    stopped = ssh(host, f"cd / && {KIT_INVOKE} down --all")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert (
        "stopped devkit (/srv/devkit)" in stopped.stdout and "1 stack(s) stopped" in stopped.stdout
    )
    assert ssh(host, "docker ps -q --filter label=com.docker.compose.project=devkit").stdout == ""
    assert ssh(host, f"cd /tmp && {KIT_INVOKE} up").returncode == 0


def test_setup_with_the_daemon_down_leaves_the_ports_of_the_stacks_it_brings_back(first_run):
    """`devkit setup` for a new app on a machine whose Docker daemon is down (no systemd, after
    a restart; WSL2): setup starts the engine first, then sees the stack that comes back with it
    (restart: unless-stopped) and gives the new app the next ports (was: it took the stopped
    stack's 5432 and 6379 while it could not ask Docker, and its start then failed with "port
    is already allocated", as on CI). The server stands for a workstation here: the kit of this
    machine is mounted in it (testhosts.up)."""
    host = HOSTS[0]
    stopped = ssh(
        host,
        "pkill -x dockerd; for i in $(seq 60); do pgrep -x dockerd >/dev/null || exit 0; "
        "sleep 0.5; done; exit 1",
    )
    assert stopped.returncode == 0 and ssh(host, "docker info").returncode != 0
    app = "/srv/another-app"
    setup = ssh(
        host,
        f"mkdir -p {app} && cd {app} && {testhosts.KIT_ROOT}/.venv/bin/devkit setup --no-vscode",
        timeout=600,
    )
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr
    assert "ports 5433 (postgres) and 6380 (redis)" in setup.stdout, setup.stdout[-3000:]
    published = ssh(host, "docker ps --format '{{.Names}} {{.Ports}}'").stdout
    assert re.search(r"^devkit-postgres-1 127\.0\.0\.1:5432->", published, re.M), published
    assert re.search(r"-postgres-1 127\.0\.0\.1:5433->", published), published
    answered = ssh(host, f"cd /tmp && {KIT_INVOKE} db.psql -c 'SELECT count(*) FROM fleet_probe'")
    assert answered.returncode == 0 and "2" in answered.stdout, answered.stdout + answered.stderr
