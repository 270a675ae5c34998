"""playbooks/site.yml on two servers over SSH (the CI test hosts of inventories/ci), one of each
kind: devkit-ci-1 without an init system, devkit-ci-2 with systemd as PID 1. Docker installed
from Debian's packages inside them (started by its init script, or enabled in systemd), the
controller's images shipped, the kit and the stack deployed, the backup scheduled (cron, or a
systemd timer) with S3 upload to moto's server on this machine; then `devkit verify` proves
both, a second run changes nothing, the timer's run lands in S3 and the other host restores it,
and each host comes back from a reboot as the README says; a workstation pulls a masked copy of
one host's database (db.pull). One module: the hosts are one set, started once."""

import contextlib
import gzip
import json
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from history import kit_at

import testhosts
from phrases import line_with

pytestmark = [pytest.mark.ansible, pytest.mark.docker]

INVENTORY = "inventories/ci"
VAULT = ("--vault-password-file", "inventories/ci/vault-password.txt")
HOSTS = list(testhosts.HOSTS)
PLAIN, SYSTEMD = testhosts.PLAIN, testhosts.SYSTEMD
# The kit as the site playbook installed it on each server (inventories/ci: devkit_kit_dir), run
# as ops type it there: the kit role puts its `devkit` command on the PATH (kit_command).
KIT_COMMAND = "devkit"


ssh = testhosts.ssh


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
    """`devkit provision`'s closing lines: host -> (ok, changed)."""
    lines = re.findall(r"^(\S+): ok=(\d+) changed=(\d+)", output, re.MULTILINE)
    return {host: (int(ok), int(changed)) for host, ok, changed in lines}


def test_up_leaves_alone_a_container_that_is_not_a_test_host():
    """`testhosts.py up` replaced any container named devkit-ci-1 or -2; one without the test
    hosts' label is now left as it is, with one line saying why (run before the hosts start)."""
    name = testhosts.PLAIN
    subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(
        ["docker", "create", "--name", name, testhosts.BASE, "true"],
        capture_output=True,
        check=True,
    )
    try:
        with pytest.raises(
            RuntimeError, match=f"a container named {name} exists that is not a test host"
        ):
            testhosts.up()
        kept = subprocess.run(["docker", "inspect", name], capture_output=True, check=False)
        assert kept.returncode == 0
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server the hosts' scheduled backups upload to (a boto3 client for it)."""
    with testhosts.s3_server() as client:
        yield client


@pytest.fixture(scope="module")
def servers(s3):
    """Two fresh servers, built from the kit's images (`setup` or `images.build` made them). No
    stack of this machine's is needed: the fleet starts while the other worker sets up its own."""
    testhosts.up()
    yield HOSTS
    testhosts.down()


@pytest.fixture(scope="module")
def invoke(operator):
    """`invoke ARGS` from the kit's directory, as an operator runs it (no terminal)."""
    return operator.invoke


def test_an_encrypted_inventory_needs_its_vault_password(servers, invoke, operator):
    for task in ("provision", "verify"):
        result = invoke(task, "--inventory", INVENTORY)
        assert result.returncode == 2, result.stdout + result.stderr
        line_with(result.stderr, "group_vars/servers/vault.yml", "ansible-vault")
        assert "fix: pass --vault-password-file FILE" in result.stderr
        # On a terminal too (was: a `Vault password:` prompt, waited at for ever).
        shown, code = on_a_terminal(operator, task, "--inventory", INVENTORY)
        assert code == 2 and "Vault password:" not in shown, shown[-2000:]
        line_with(shown, "group_vars/servers/vault.yml", "ansible-vault")


def test_a_wrong_vault_password_is_named(servers, invoke, tmp_path):
    wrong = tmp_path / "wrong-password.txt"
    wrong.write_text("not-the-password\n")
    for task in ("provision", "verify"):
        result = invoke(task, "--inventory", INVENTORY, "--vault-password-file", str(wrong))
        assert result.returncode == 1, result.stdout + result.stderr
        line_with(result.stderr, "vault password", "inventories/ci")


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
        line_with(shown, "vault password", "inventories/ci")
        assert "not-it" not in shown.split("Vault password:")[-1]


def test_bad_settings_on_one_host_change_no_host(servers, operator, tmp_path):
    """A bad inventory value is refused before any task changes anything on any host, naming
    the inventory variable and the host (was: caught mid-play, after invoke.yaml was written),
    with exit code 2 (bad settings, as the README says; was 1)."""
    inventory = tmp_path / "bad-port"
    shutil.copytree(f"{testhosts.KIT_ROOT}/{INVENTORY}", inventory)
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / "devkit-ci-2.yml").write_text("devkit_postgres_port: 99999\n")
    password = f"--vault-password-file={inventory}/vault-password.txt"
    for output, code in without_and_with_a_terminal(
        operator, "provision", "--inventory", str(inventory), password
    ):
        assert code == 2, output[-3000:]
        assert "devkit-ci-2: FAILED: devkit_postgres_port=" in output and "99999" in output
        assert "host_vars/devkit-ci-2.yml" in output and "invoke.yaml" not in output
        line_with(output, "devkit-ci-1: not changed")
        assert "no host was changed" in output
        assert "Traceback" not in output
    assert all(ssh(name, "command -v dockerd").returncode != 0 for name in servers)


def test_two_hosts_with_two_bad_settings_each_name_their_own(servers, invoke, tmp_path):
    """Each host's line carries that host's cause (was: ci-2's line named ci-1's port, as
    Ansible prints a failure's summary before the host's own record)."""
    inventory = tmp_path / "two-bad"
    shutil.copytree(f"{testhosts.KIT_ROOT}/{INVENTORY}", inventory)
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / "devkit-ci-1.yml").write_text("devkit_postgres_port: 99999\n")
    (inventory / "host_vars" / "devkit-ci-2.yml").write_text("devkit_redis_port: abc\n")
    result = invoke(
        "provision", "--inventory", str(inventory),
        f"--vault-password-file={inventory}/vault-password.txt",
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    one, two = line_with(out, "devkit-ci-1: FAILED:"), line_with(out, "devkit-ci-2: FAILED:")
    assert "devkit_postgres_port=99999" in one and "devkit_redis_port" not in one
    assert "devkit_redis_port='abc'" in two and "devkit_postgres_port" not in two


def test_passwords_must_come_from_the_vault(servers, invoke, tmp_path):
    inventory = tmp_path / "no-vault"
    shutil.copytree(f"{testhosts.KIT_ROOT}/{INVENTORY}", inventory)
    (inventory / "group_vars" / "servers" / "vault.yml").unlink()
    result = invoke("provision", "--inventory", str(inventory))
    assert result.returncode == 2
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
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is still the example's CHANGE-ME placeholder" in result.stdout + result.stderr
    assert all(ssh(name, "command -v dockerd").returncode != 0 for name in servers)


def test_check_on_fresh_hosts_shows_what_would_change(servers, invoke):
    """The README's first command against new servers, on one of each kind (was: `FAILED:
    python3-apt must be installed to use check mode` on every host, exit 1). It installs
    python3-apt, and nothing else."""
    result = invoke("provision", "--inventory", INVENTORY, *VAULT, "--check", timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    found = dict(re.findall(r"^(\S+): ok=\d+ changed=(\d+) \(check mode\)$", result.stdout, re.M))
    assert sorted(found) == HOSTS and all(int(n) > 0 for n in found.values()), result.stdout
    for host in HOSTS:
        line_with(
            result.stdout, f"warning: {host}: the Docker daemon is not running (not installed"
        )
    line_with(result.stdout, "changed: Install the distribution's engine")
    assert all(ssh(name, "command -v dockerd").returncode != 0 for name in servers)


# The controller keeps one exported image set (inventories/ci: images_controller_cache); older
# ones are removed.
STALE_ARCHIVE = testhosts.CI_DIR / "images" / "devkit-images-0000000000000000.tar"


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
    assert "failed:" not in first_run.stdout and "FAILED" not in first_run.stdout
    # The default view: one line per task that changed something, with its hosts (was ~380
    # lines of Ansible's own for a first provision of both).
    assert len(first_run.stdout.splitlines()) <= 60, first_run.stdout
    line_with(first_run.stdout, "changed: ", "(devkit-ci-1, devkit-ci-2)")
    # no_log wherever a secret passes: neither password appears in Ansible's output.
    secrets = vault_secrets()
    assert len(secrets) == 5 and all(len(secret) >= 16 for secret in secrets)
    assert not any(secret in first_run.stdout + first_run.stderr for secret in secrets)


def test_the_controller_keeps_one_image_archive(first_run):
    archives = list(STALE_ARCHIVE.parent.glob("devkit-images-*.tar"))
    assert not STALE_ARCHIVE.exists() and len(archives) == 1


def load_arm64_image(tag: str) -> None:
    """An image made for arm64, as its config says (Architecture: arm64, what the engine and
    docker_image_info report), holding one text file: loaded on this controller with
    `docker load`, which takes an image of any architecture."""
    import hashlib
    import io
    import json
    import tarfile

    def tar(members: dict[str, bytes]) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as archive:
            for name, content in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
        return out.getvalue()

    layer = tar({"devkit-archprobe.txt": b"made for arm64\n"})
    config = json.dumps({
        "architecture": "arm64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }).encode()  # fmt: skip
    name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": name, "RepoTags": [tag], "Layers": ["layer/layer.tar"]}])
    archive = tar({name: config, "layer/layer.tar": layer, "manifest.json": manifest.encode()})
    subprocess.run(["docker", "load"], input=archive, check=True, capture_output=True)


def test_images_of_another_architecture_are_refused_before_any_change(first_run):
    """An amd64 host is never sent the controller's arm64 image, nor provisioned again once it
    was another architecture: one line naming both, and nothing changed on any host."""
    from devkit.paths import KIT_ROOT, PLAYBOOKS
    from devkit.playbook import run_playbook

    assert first_run.returncode == 0
    probe = "devkit-archprobe/postgres:arm64"
    load_arm64_image(probe)

    def site(extra: dict) -> str:
        result = run_playbook(
            PLAYBOOKS / "site.yml", KIT_ROOT / INVENTORY, extra, echo=False, local=False,
            args=("--limit", PLAIN, "--vault-password-file", str(KIT_ROOT / VAULT[1])),
            check=False,
        )  # fmt: skip
        assert result.returncode != 0 and result.changed == 0, result.output[-3000:]
        return result.output

    try:
        # Both the official and the offline name arm64: the controller has nothing of the
        # host's architecture for postgres (else it would ship that one: controller_choice).
        said = site({"images_postgres_official": probe, "images_postgres_local": probe})
        line_with(said, f"{PLAIN} is amd64 (x86_64)", f"controller's {probe} is arm64")
    finally:
        subprocess.run(["docker", "rmi", probe], capture_output=True, check=False)
    record = "/var/lib/devkit/architecture"
    assert ssh(PLAIN, f"cat {record}").stdout.strip() == "amd64"  # written by the first run
    assert ssh(PLAIN, f"echo arm64 > {record}").returncode == 0  # as if it had been a Pi
    try:
        said = site({})
        line_with(said, f"{PLAIN} was arm64 when it was last provisioned", "is amd64")
    finally:
        ssh(PLAIN, f"echo amd64 > {record}")


def test_a_board_with_too_little_memory_is_refused_before_any_change(first_run):
    """A server below the stack's floor (devkit/memory.py; a 512 MB Pi Zero 2 W reports about
    430 MiB) is refused in site.yml's check, naming the host and its memory, and no host changes.
    The host's memory here is stood in for by devkit_memory_mb, the inventory's say over it."""
    from devkit.paths import KIT_ROOT, PLAYBOOKS
    from devkit.playbook import run_playbook

    assert first_run.returncode == 0
    result = run_playbook(
        PLAYBOOKS / "site.yml", KIT_ROOT / INVENTORY, {"devkit_memory_mb": 430}, echo=False,
        local=False, args=("--vault-password-file", str(KIT_ROOT / VAULT[1])), check=False,
    )  # fmt: skip
    assert result.returncode != 0 and result.changed == 0, result.output[-3000:]
    for host in (PLAIN, SYSTEMD):
        line_with(result.output, f"{host} has 430 MiB of memory, below the 700 MiB")


def test_a_32_bit_system_is_refused_before_any_change_whatever_its_images_source(
    first_run, invoke, tmp_path
):
    """A server the kit makes no images for (a 32-bit system: armv7l on a Raspberry Pi) is
    refused in site.yml's check with its own line, and no host changes, also when its images
    come from the registry (was: with images_source auto the check let it through, the other
    hosts were changed, and it failed mid-run on the docker_arch filter). The host's Python
    runs under `setarch linux32`, so its `uname -m` (Ansible's architecture fact) is i686: a
    real 32-bit personality, as a 32-bit kernel reports, and one the kit does not serve."""
    assert first_run.returncode == 0
    python32 = "/usr/local/bin/python3-linux32"  # Ansible takes an interpreter's path only
    made = ssh(PLAIN, f"printf '#!/bin/sh\\nexec setarch linux32 /usr/bin/python3 \"$@\"\\n' "
                      f"> {python32} && chmod 755 {python32} && {python32} -c "
                      "'import platform; print(platform.machine())'")  # fmt: skip
    assert made.stdout.strip() == "i686", made.stdout + made.stderr
    inventory = tmp_path / "thirty-two"
    shutil.copytree(f"{testhosts.KIT_ROOT}/{INVENTORY}", inventory)
    (inventory / "host_vars").mkdir()
    (inventory / "host_vars" / f"{PLAIN}.yml").write_text(
        f"devkit_images_source: auto\nansible_python_interpreter: {python32}\n"
    )
    # A change the other host would get, were the run to go on past the check.
    (inventory / "host_vars" / f"{SYSTEMD}.yml").write_text("devkit_memory_mb: 1600\n")
    before = ssh(SYSTEMD, "docker inspect -f '{{.Id}}' devkit-postgres-1").stdout
    assert before.strip()
    try:
        result = invoke(
            "provision", "--inventory", str(inventory),
            f"--vault-password-file={inventory}/vault-password.txt",
        )  # fmt: skip
    finally:
        ssh(PLAIN, f"rm -f {python32}")
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    line_with(out, f"{PLAIN}: FAILED:", "the architecture i386 is not one the kit's images")
    line_with(out, f"{SYSTEMD}: not changed")
    assert "no host was changed" in out and "Traceback" not in out
    assert ssh(SYSTEMD, "docker inspect -f '{{.Id}}' devkit-postgres-1").stdout == before


def test_a_host_that_stops_answering_ends_unreachable_while_the_other_finishes(probe_data, invoke):
    """devkit-ci-1 paused (`docker pause`: it accepts connections, then says nothing) a few
    seconds into a provision: the run ends within the SSH keep-alives' bound after the pause,
    that host UNREACHABLE with what it means, the other provisioned (was: the run waited 538 s,
    printing nothing, until the host came back)."""
    import threading

    from devkit.provisioning import connect_seconds, keepalive_seconds

    done: dict = {}

    def run() -> None:
        done["result"] = invoke("provision", "--inventory", INVENTORY, *VAULT, timeout=900)
        done["at"] = time.monotonic()

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(12)
    subprocess.run(["docker", "pause", PLAIN], capture_output=True, check=True)
    paused = time.monotonic()
    try:
        worker.join(timeout=600)
    finally:
        subprocess.run(["docker", "unpause", PLAIN], capture_output=True, check=False)
    assert not worker.is_alive(), "provision still waiting for the paused host"
    result = done["result"]
    out = result.stdout + result.stderr
    assert result.returncode == 1, out[-3000:]
    assert done["at"] - paused < keepalive_seconds() + 180, out[-3000:]
    # Met on an open connection (its keep-alives) or by a new one (its banner), each bounded.
    said = line_with(out, f"{PLAIN}: UNREACHABLE: no answer for ")
    assert f"for {keepalive_seconds()} s" in said or f"for {connect_seconds()} s" in said, said
    line_with(out, f"{SYSTEMD}: ok=")
    assert ssh(PLAIN, "true").returncode == 0  # back once unpaused


def test_docker_came_from_debian_packages(first_run, servers):
    for name in servers:
        packages = ssh(name, "dpkg-query -W -f '${Package} ${Status}\\n' docker.io docker-compose")
        assert packages.stdout.count("install ok installed") == 2, packages.stdout + packages.stderr


def test_each_kind_of_host_runs_the_engine_and_the_schedule_its_own_way(first_run):
    """With systemd: docker.service enabled and running, the backup a timer (Persistent: a run
    missed while the host was off happens at boot) and no cron entry. Without: dockerd started
    by its init script (not by systemd), the backup a cron entry and no unit."""
    on_systemd = ssh(
        SYSTEMD,
        "systemctl is-enabled docker.service devkit-backup-devkit.timer; "
        "systemctl is-active docker.service devkit-backup-devkit.timer; "
        "systemctl show -p Persistent --value devkit-backup-devkit.timer; "
        "(crontab -l 2>/dev/null || true) | grep -c 'devkit backup'; docker compose version --short",
    )
    lines = on_systemd.stdout.splitlines()
    assert lines[:5] == ["enabled", "enabled", "active", "active", "yes"], on_systemd.stdout
    assert lines[5] == "0" and re.match(r"2\.\d+", lines[6]), on_systemd.stdout
    plain = ssh(
        PLAIN,
        "test -d /run/systemd/system && echo systemd; pgrep -x dockerd >/dev/null && echo dockerd; "
        "ls /etc/systemd/system/devkit-backup-devkit.timer 2>&1; crontab -l; "
        "docker compose version --short",
    )
    assert "systemd\n" not in plain.stdout and "dockerd" in plain.stdout, plain.stdout
    assert "No such file or directory" in plain.stdout, plain.stdout
    assert "#Ansible: devkit backup devkit" in plain.stdout, plain.stdout


def test_drift_is_shown_without_passwords_and_a_second_run_changes_only_it(
    first_run, operator, invoke
):
    """One server drifted twice: a password edited by hand in .env.local, and an older kit (a
    module since dropped, its archive gone). `--check --limit` on a terminal (where Ansible
    colours its output: was "changed=0" then "error: no host matched") reports the change there
    and none on the other kind of host (on the systemd host `--check` failed: `command` answers
    rc=0 in check mode), and no_log keeps the file and its passwords out of the output. The
    second real run puts it back (the kit is shipped anew) and changes nothing on the other
    host; the drifted host's next run changes nothing either (test_a_host_down_...)."""
    drifted, unchanged = PLAIN, SYSTEMD
    prepared = ssh(
        drifted,
        "sed -i 's/^PGPASSWORD=.*/PGPASSWORD=drifted-by-hand-0000/' /srv/devkit/.env.local && "
        "touch /opt/devkit/devkit/dropped_module.py && rm /opt/devkit/.archive/kit.tar.gz",
    )
    assert prepared.returncode == 0, prepared.stderr

    shown, code = on_a_terminal(
        operator, "provision", "--inventory", INVENTORY, *VAULT, "--check", "--limit",
        "devkit-ci-*", "--verbose",
    )  # fmt: skip
    assert code == 0, shown[-3000:]
    assert "\x1b[" in shown  # Ansible did colour its output (--verbose: Ansible's own)
    found = dict(re.findall(r"^(\S+): ok=\d+ changed=(\d+) \(check mode\)\r?$", shown, re.M))
    assert sorted(found) == HOSTS, shown[-3000:]
    assert int(found[drifted]) >= 2 and found[unchanged] == "0", shown[-3000:]
    assert not any(secret in shown for secret in vault_secrets())

    second = invoke("provision", "--inventory", INVENTORY, *VAULT)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr
    changed = {host: count for host, (_, count) in recap(second.stdout).items()}
    assert changed[drifted] >= 2 and changed[unchanged] == 0, second.stdout[-3000:]
    assert "drifted-by-hand" not in ssh(drifted, "cat /srv/devkit/.env.local").stdout
    assert ssh(drifted, "test -e /opt/devkit/devkit/dropped_module.py").returncode == 1
    assert ssh(drifted, f"cd /tmp && {KIT_COMMAND} db.list").returncode == 0


def restart_policies(host: str) -> str:
    return ssh(
        host,
        "docker inspect -f '{{.Name}} {{.HostConfig.RestartPolicy.Name}}' "
        "devkit-postgres-1 devkit-redis-1",
    ).stdout


def test_drift_in_the_kits_files_units_and_daemon_is_shown_by_check_and_repaired(first_run, invoke):
    """The systemd server's compose.yaml edited to `restart: "no"` and applied (as provision
    applied it before) and its backup timer removed; the other server's daemon stopped. verify
    fails on the containers' policy; --check names the file, shows the timer and the daemon as
    changes (it failed on both); provision unpacks the kit's files again, the containers are
    made anew with compose.yaml's policy, and the next --check changes nothing (was: --check
    changed=0 for the edit, verify passed 14/14, provision kept it, and after a reboot the
    stack stayed down)."""
    edited = ssh(
        SYSTEMD,
        "cd /opt/devkit/compose && sed -i 's/restart: unless-stopped/restart: \"no\"/' "
        "compose.yaml && docker compose --env-file /srv/devkit/.env.local -f compose.yaml "
        "up -d --wait && rm /etc/systemd/system/devkit-backup-devkit.timer && "
        "systemctl daemon-reload",
        timeout=300,
    )
    assert edited.returncode == 0, edited.stdout + edited.stderr
    assert restart_policies(SYSTEMD) == "/devkit-postgres-1 no\n/devkit-redis-1 no\n"
    stopped = ssh(PLAIN, "pkill -x dockerd; while pgrep -x dockerd; do sleep 0.5; done")
    assert stopped.returncode == 0 and ssh(PLAIN, "docker info").returncode != 0

    verified = invoke("verify", "--inventory", INVENTORY, *VAULT, "--limit", SYSTEMD)
    assert verified.returncode == 1, verified.stdout[-3000:]
    line_with(verified.stdout, "restart policy and stop timeout 'no 30'", "unless-stopped")

    checked = invoke("provision", "--inventory", INVENTORY, *VAULT, "--check")
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr
    line_with(checked.stdout, f"warning: {SYSTEMD}:", "differ from", "compose/compose.yaml")
    line_with(checked.stdout, "changed: Write the backup service and timer", SYSTEMD)
    line_with(checked.stdout, f"warning: {PLAIN}: the Docker daemon is not running:")
    assert all(changed >= 1 for _, changed in recap(checked.stdout).values()), checked.stdout
    assert 'restart: "no"' in ssh(SYSTEMD, "cat /opt/devkit/compose/compose.yaml").stdout

    repaired = invoke("provision", "--inventory", INVENTORY, *VAULT)
    assert repaired.returncode == 0, repaired.stdout[-3000:] + repaired.stderr
    assert 'restart: "no"' not in ssh(SYSTEMD, "cat /opt/devkit/compose/compose.yaml").stdout
    for host in HOSTS:
        wanted = "/devkit-postgres-1 unless-stopped\n/devkit-redis-1 unless-stopped\n"
        assert restart_policies(host) == wanted
    assert ssh(SYSTEMD, "systemctl is-active devkit-backup-devkit.timer").returncode == 0
    again = invoke("provision", "--inventory", INVENTORY, *VAULT, "--check")
    assert all(changed == 0 for _, changed in recap(again.stdout).values()), again.stdout[-3000:]


def test_a_policy_changed_behind_compose_is_shown_by_check_and_made_anew(first_run, invoke):
    """`docker update --restart=no` on a server's container (not through compose.yaml): verify
    names it, --check shows the container to be made anew, provision makes it so, and the
    next --check changes nothing (was: verify failed, and provision kept the container as it
    was, Compose's config hash being unchanged)."""
    assert first_run.returncode == 0
    updated = ssh(SYSTEMD, "docker update --restart=no devkit-redis-1")
    assert updated.returncode == 0, updated.stderr
    assert restart_policies(SYSTEMD) == "/devkit-postgres-1 unless-stopped\n/devkit-redis-1 no\n"
    verified = invoke("verify", "--inventory", INVENTORY, *VAULT, "--limit", SYSTEMD)
    assert verified.returncode == 1, verified.stdout[-3000:]
    line_with(verified.stdout, "restart policy and stop timeout 'no 30'", "unless-stopped")
    checked = invoke("provision", "--inventory", INVENTORY, *VAULT, "--check", "--limit", SYSTEMD)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr
    line_with(checked.stdout, "changed: Make anew the containers that run otherwise", SYSTEMD)
    assert restart_policies(SYSTEMD).endswith("/devkit-redis-1 no\n")  # --check changed nothing
    repaired = invoke("provision", "--inventory", INVENTORY, *VAULT, "--limit", SYSTEMD)
    assert repaired.returncode == 0, repaired.stdout[-3000:] + repaired.stderr
    wanted = "/devkit-postgres-1 unless-stopped\n/devkit-redis-1 unless-stopped\n"
    assert restart_policies(SYSTEMD) == wanted
    again = invoke("provision", "--inventory", INVENTORY, *VAULT, "--check", "--limit", SYSTEMD)
    assert recap(again.stdout)[SYSTEMD][1] == 0, again.stdout[-3000:]


def test_a_step_that_hangs_fails_its_host_at_the_time_limit_and_the_other_finishes(
    first_run, invoke, tmp_path
):
    """A wedged Docker daemon on one server (stopped by SIGSTOP: `docker info` never returns):
    that host fails at the step, naming the time limit, and the other host finishes (was: the
    run waited as long as the daemon did; here, until the test's own 10 minutes)."""
    inventory = tmp_path / "short-steps"
    shutil.copytree(f"{testhosts.KIT_ROOT}/{INVENTORY}", inventory)
    (inventory / "group_vars" / "servers" / "steps.yml").write_text("devkit_step_timeout: 20\n")
    password = f"--vault-password-file={inventory}/vault-password.txt"
    assert ssh(PLAIN, "kill -STOP $(pidof dockerd)").returncode == 0
    try:
        result = invoke("provision", "--inventory", str(inventory), password, timeout=600)
    finally:
        ssh(PLAIN, "kill -CONT $(pidof dockerd)")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    line_with(result.stdout, f"{PLAIN}: FAILED:", "Timed out after 20 second(s)")
    # Done, with the new setting written to its invoke.yaml (the next run puts it back).
    assert re.search(rf"^{SYSTEMD}: ok=\d+ changed=\d+$", result.stdout, re.M), result.stdout


def test_a_host_down_is_named_and_the_others_are_done(first_run, servers, operator, tmp_path):
    """provision (on a terminal, where Ansible colours its output) and verify (piped) with one
    host down (its SSH port refuses): one line per host with its state, the cause for the
    unreachable one, exit 1 (verify printed 844 lines of tracebacks). The host stays as it is:
    the inventory copy points at a closed port. The host that is up changes nothing: its run
    after the drift was put back."""
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
    arguments = ("--inventory", str(inventory), password)
    verified = operator.invoke("verify", *arguments)
    for output, code in (
        on_a_terminal(operator, "provision", *arguments),
        (verified.stdout + verified.stderr, verified.returncode),
    ):
        assert code == 1, output[-3000:]
        assert re.search(rf"^{down}: .*UNREACHABLE: .*port {closed}", output, re.M), output[-3000:]
        assert re.search(
            rf"^{HOSTS[0]}: (ok=\d+ changed=0|\d+ passed, 0 failed, 0 skipped)\r?$",
            output,
            re.M,
        ), output[-3000:]
        assert "1 of 2 hosts not" in output and f"{down} (unreachable)" in output
        assert "Traceback" not in output, output[-3000:]


@pytest.fixture(scope="module")
def probe_data(first_run):
    """A table on each server, through the kit on the host: the data a reboot must keep and the
    backups must hold."""
    for name in HOSTS:
        sql = (
            "CREATE TABLE IF NOT EXISTS fleet_probe (id int PRIMARY KEY, host text); "
            f"INSERT INTO fleet_probe VALUES (1, '{name}'), (2, '{name}') ON CONFLICT DO NOTHING"
        )
        seeded = ssh(name, f"cd /tmp && {KIT_COMMAND} db.psql -c {shlex.quote(sql)}")
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    return HOSTS


def timer_next_run(host: str) -> str:
    """`systemctl list-timers`' NEXT column for the backup's timer ("" when it has none)."""
    listed = ssh(host, "systemctl list-timers --all --no-legend devkit-backup-devkit.timer")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split("  ")[0].strip() if "devkit-backup-devkit" in listed.stdout else ""


def healthy(host: str, timeout: float = 120) -> bool:
    """Both of the host's stack containers report healthy (within `timeout` seconds)."""
    command = (
        f"for i in $(seq {int(timeout)}); do "
        "[ $(docker ps --filter label=com.docker.compose.project=devkit "
        "--filter health=healthy -q | wc -l) = 2 ] && exit 0; sleep 1; done; exit 1"
    )
    return ssh(host, command, timeout=timeout + 30).returncode == 0


def test_a_reboot_brings_each_kind_of_host_back_as_the_readme_says(probe_data, invoke):
    """systemd host: docker.service starts at boot, the containers come back healthy (restart:
    unless-stopped) and the timer is scheduled, with no provision between (verify passes next).
    Host without an init system: nothing starts dockerd or cron at boot; `devkit up` there says
    so with the fix, and `provision --limit HOST` starts both. The data is in place on both."""
    for host in HOSTS:
        testhosts.reboot(host)
    assert healthy(SYSTEMD)
    assert timer_next_run(SYSTEMD) not in ("", "-", "n/a")

    down = ssh(PLAIN, f"cd /tmp && {KIT_COMMAND} up")
    assert down.returncode == 1 and "Traceback" not in down.stdout + down.stderr
    assert "service docker start" in down.stderr, down.stdout + down.stderr
    # A server's hint names what sets a server up (was: "`devkit setup` starts it", and setup
    # on a server failed).
    line_with(down.stderr, f"devkit provision --inventory INVENTORY --limit {PLAIN}", "controller")
    assert "devkit setup" not in down.stderr
    refused = ssh(PLAIN, f"cd /tmp && {KIT_COMMAND} setup")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    line_with(refused.stderr, f"--limit {PLAIN}")
    assert ssh(PLAIN, "pgrep -x cron").returncode == 1  # the schedule would not run either
    started = invoke("provision", "--inventory", INVENTORY, *VAULT, "--limit", PLAIN)
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr
    assert recap(started.stdout)[PLAIN][1] >= 2  # the daemon and cron started
    assert healthy(PLAIN) and ssh(PLAIN, "pgrep -x cron").returncode == 0
    for name in HOSTS:
        rows = ssh(name, f"cd /tmp && {KIT_COMMAND} db.psql -c 'SELECT count(*) FROM fleet_probe'")
        assert rows.returncode == 0 and " 2\n" in rows.stdout, rows.stdout + rows.stderr


def test_a_nearly_full_disk_loses_its_expired_backups_first_never_the_newest(probe_data, s3):
    """The scheduled job on a disk with no room for one more backup (a Raspberry Pi's SD card,
    stood in for by an 8 MiB tmpfs over the host's backup directory): the expired backups go
    first, except the newest intact one, so the new backup fits; then that one goes too. Was:
    the backup failed for want of space before the prune ran, every night."""
    host, job, backups = PLAIN, "/usr/local/sbin/devkit-backup-devkit", "/srv/devkit/backups"
    first = ssh(
        host, f"mkdir -p {backups} && mount -t tmpfs -o size=8m devkit-sd {backups} && {job}"
    )
    try:
        assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
        [kept] = ssh(host, f"cd {backups} && ls backup_*.backup.gz").stdout.split()
        fill = (
            f"cd {backups} && size=$(stat -c %s {kept}) && "
            f"cp -p {kept} backup_20250101_000000.backup.gz && "
            f"touch -d '40 days ago' backup_20250101_000000.backup.gz && "
            f"touch -d '30 days ago' {kept} && "
            # Room for half a backup: the new one fits only once an expired one is gone.
            "free=$(df -B1 --output=avail . | tail -1) && "
            "head -c $((free - size / 2)) /dev/zero > filler 2>/dev/null; df -B1 --output=avail ."
        )
        assert ssh(host, fill).returncode == 0
        run = ssh(host, job)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        left = ssh(host, f"cd {backups} && ls -A").stdout.split()
        assert (
            "filler" in left and kept not in left and "backup_20250101_000000.backup.gz" not in left
        )
        assert [n for n in left if n.startswith("backup_")], left
        assert not [n for n in left if n.endswith(".partial")], left
    finally:
        ssh(host, f"umount {backups}")


def test_a_failed_scheduled_backup_is_visible(probe_data, s3):
    """A night whose backup fails leaves its result where status, verify and a monitoring
    system read it (was: only a line in a log file)."""
    job = "/usr/local/sbin/devkit-backup-devkit"
    stopped = ssh(PLAIN, f"docker stop devkit-postgres-1 >/dev/null && {job}")
    try:
        assert stopped.returncode != 0, stopped.stdout + stopped.stderr
        status = ssh(PLAIN, "cat /var/lib/devkit/backup-devkit.status").stdout
        assert status.startswith("failed ") and status.split()[2] == str(stopped.returncode)
        shown = ssh(PLAIN, f"cd /tmp && {KIT_COMMAND} status")
        line_with(shown.stdout, "scheduled backup: last run FAILED", "its log says why")
    finally:
        ssh(PLAIN, "docker start devkit-postgres-1")
        assert healthy(PLAIN)
    again = ssh(PLAIN, job)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert ssh(PLAIN, "cat /var/lib/devkit/backup-devkit.status").stdout.startswith("ok ")
    line_with(ssh(PLAIN, f"cd /tmp && {KIT_COMMAND} status").stdout, "last run ok")


def test_verify_passes_on_both_hosts(probe_data, servers, invoke, argv_watch, s3):
    """After the reboot (the systemd host has had no provision since), the kit's checks pass on
    both hosts, the scheduled backup's run among them: its file holds the host's data and went
    to S3."""
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
            f"cd /tmp && {KIT_COMMAND} db.verify "
            '"$(ls -t /srv/devkit/backups/*.backup.gz | head -n 1)"',
        )
        assert latest.returncode == 0 and "1 tables, 2 rows" in latest.stdout, (
            latest.stdout + latest.stderr
        )
        # ... and went to S3 too, under the host's own prefix.
        uploaded = s3.list_objects_v2(Bucket=testhosts.S3_BUCKET, Prefix=f"backups/{name}/")
        assert [o["Key"] for o in uploaded.get("Contents", [])], uploaded
    # `down --all` stops every devkit stack of a machine (here: a server's one), by project.
    host = HOSTS[0]
    stopped = ssh(host, f"cd / && {KIT_COMMAND} down --all")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert (
        "stopped devkit (/srv/devkit)" in stopped.stdout and "1 stack(s) stopped" in stopped.stdout
    )
    assert ssh(host, "docker ps -q --filter label=com.docker.compose.project=devkit").stdout == ""
    assert ssh(host, f"cd /tmp && {KIT_COMMAND} up").returncode == 0


def test_the_timer_runs_the_backup_to_s3_and_the_other_host_restores_it(probe_data, s3):
    """The ops flow "back up production, restore into staging": the systemd host's timer starts
    the backup service (started here as the timer starts it, then scheduled again), whose run
    writes a backup the host's db.verify accepts, uploads it with its SHA-256 and logs no secret;
    the host without systemd restores that object from S3 (db.restore-s3) and has the data."""
    assert timer_next_run(SYSTEMD) not in ("", "-", "n/a")
    ran = ssh(
        SYSTEMD,
        "systemctl start devkit-backup-devkit.service && "
        "systemctl show -p Result --value devkit-backup-devkit.service",
    )
    assert ran.returncode == 0 and ran.stdout.strip() == "success", ran.stdout + ran.stderr
    log = ssh(SYSTEMD, "cat /var/log/devkit-backup-devkit.log").stdout
    journal = ssh(SYSTEMD, "journalctl --no-pager -o cat -u devkit-backup-devkit.service").stdout
    run = log[log.rindex("backup starts") :]
    written = re.findall(r"backup written: (\S+)", run)[0]
    assert f"uploaded to s3://{testhosts.S3_BUCKET}/backups/{SYSTEMD}/" in run, run
    assert "backup uploaded" in run, run
    assert "devkit backup devkit" in journal, journal  # systemd logged the run itself
    assert not any(secret in log + journal for secret in vault_secrets())
    verified = ssh(SYSTEMD, f"cd /tmp && {KIT_COMMAND} db.verify {written}")
    assert verified.returncode == 0 and "SHA-256 verified" in verified.stdout, verified.stdout
    assert timer_next_run(SYSTEMD) not in ("", "-", "n/a")  # scheduled again

    name = written.rsplit("/", 1)[1]
    key = f"backups/{SYSTEMD}/{name}"
    head = s3.head_object(Bucket=testhosts.S3_BUCKET, Key=key)
    local_sum = ssh(SYSTEMD, f"sha256sum {written}").stdout.split()[0]
    assert local_sum in head["Metadata"].values(), head["Metadata"]

    # On the other host, as typed there: the job's settings and credentials are the chores'
    # too (was: "Unable to locate credentials" unless its env file was sourced), and
    # --from-host names the first host's prefix (was: an INVOKE_DEVKIT_S3_PREFIX override).
    listed = ssh(PLAIN, f"cd /tmp && {KIT_COMMAND} db.list-remote --from-host {SYSTEMD}")
    assert listed.returncode == 0 and name in listed.stdout, listed.stdout + listed.stderr
    restored = ssh(
        PLAIN, f"cd /tmp && {KIT_COMMAND} db.restore-s3 {name} --from-host {SYSTEMD} --yes"
    )
    assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr
    rows = ssh(PLAIN, f"cd /tmp && {KIT_COMMAND} db.psql -c 'SELECT host FROM fleet_probe'")
    assert rows.stdout.count(SYSTEMD) == 2 and PLAIN not in rows.stdout, rows.stdout


SCHEDULE_ALONE = """
- name: The backup_schedule role alone (a schedule beside the site's)
  hosts: devkit-ci-2
  gather_facts: false
  roles:
    - role: backup_schedule
"""


# --- db.pull: a masked copy of a server's database on a workstation (devkit/pull/) ------------
# The plain host plays staging: personal data in its stack's database, loaded through its kit.
# This machine is the developer's laptop: an app of its own (set up by the kit), the same tables.
PERSONAL_SCHEMA = """
CREATE TABLE address (address_id int PRIMARY KEY, address text NOT NULL, city text,
  phone varchar(20));
CREATE TABLE customer (customer_id int PRIMARY KEY, first_name text NOT NULL,
  last_name text NOT NULL, email varchar(80) UNIQUE NOT NULL, address_id int REFERENCES address,
  birth date);
CREATE TABLE payment (payment_id bigint PRIMARY KEY, customer_id int NOT NULL
  REFERENCES customer, amount numeric(8,2));
"""
PERSONAL_ROWS = """
INSERT INTO address SELECT g, g || ' Sakura Dori', 'Yokohama', '080-5555-' || lpad(g::text, 4, '0')
  FROM generate_series(1, 300) g;
INSERT INTO customer SELECT g, 'Hanako' || g, 'Yamada' || g, 'hanako.yamada' || g || '@mail.example',
  g, date '1985-04-01' + g FROM generate_series(1, 300) g;
INSERT INTO payment SELECT g, 1 + g % 300, g % 50 FROM generate_series(1, 1200) g;
"""
ORIGINALS = ("Hanako", "Yamada", "hanako.yamada", "Sakura Dori", "080-5555")
PULL_RULES = """\
tables:
  fleet_probe: {id: keep, host: keep}
  address:
    address_id: keep
    address: {fake: address_ja}
    city: {fake: city}
    phone: {format: "090-xxxx-xxxx"}
  customer:
    customer_id: hash
    first_name: {fake: first_name_ja}
    last_name: {fake: last_name_ja}
    email: {fake: email}
    address_id: keep
    birth: {shift: 30}
  payment:
    payment_id: keep
    amount: keep
"""


@pytest.fixture(scope="module")
def laptop(probe_data, tmp_path_factory):
    """Staging's personal data on the plain host (beside the probe table every host has); an app
    on this machine with the same tables and the rules; its stack removed after."""
    from tests.conftest import devkit, remove_app_stack

    seeded = ssh(
        PLAIN, f"cd /tmp && {KIT_COMMAND} db.psql -c {shlex.quote(PERSONAL_SCHEMA + PERSONAL_ROWS)}"
    )
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    app = Path(tmp_path_factory.mktemp("laptop")) / "shop"
    app.mkdir()
    try:
        done = devkit("setup", "--no-vscode", cwd=app, env={}, timeout=900)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
        laptop_sql(
            app,
            PERSONAL_SCHEMA + "CREATE TABLE fleet_probe (id int PRIMARY KEY, host text); "
            "INSERT INTO address VALUES (1, 'local only', 'here', '1')",
        )
        (app / "db-pull.yaml").write_text(PULL_RULES)
        yield app
    finally:
        remove_app_stack(app)


def laptop_sql(app, query: str) -> list[tuple]:
    from devkit.envfile import read_env_file
    from tests.conftest import sql

    return sql(read_env_file(app / ".env.local")["DATABASE_URL_SYNC"], query)


def laptop_rows(app) -> str:
    """Every row of the laptop app's tables, as text (what a scan for personal data reads)."""
    tables = ("address", "customer", "payment")
    return "\n".join(
        row
        for table in tables
        for (row,) in laptop_sql(app, f"SELECT t::text FROM {table} t ORDER BY 1")
    )


def pull(app, *args: str):
    from tests.conftest import devkit

    return devkit("db.pull", *args, *VAULT, cwd=app, env={}, timeout=600)


def test_a_pull_brings_staging_masked_and_nothing_personal_reaches_the_laptop(laptop, argv_watch):
    from devkit.paths import state_dir
    from tests.conftest import devkit

    with argv_watch(vault_secrets()) as leaks:
        done = pull(laptop, "ci", "--host", PLAIN, "--yes")
    assert leaks == []  # the masking key is in no command line, here or on the host
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-3000:]
    line_with(said, "Pulled from", PLAIN, "4 tables", "1802 rows")
    line_with(said, "snapshot pulled-ci", "db.snapshot.restore pulled-ci")
    rows = laptop_rows(laptop)
    assert rows.count("\n") + 1 == 1800
    # Nothing personal anywhere on the laptop: its database, the pulled file, the kit's state
    # (records, snapshots' Redis copies), the command's output.
    places = {"database": rows, "output": said}
    for backup in (laptop / "backups").glob("*.backup.gz"):
        with gzip.open(backup, "rt", encoding="utf-8") as file:
            places[backup.name] = file.read()
    for path in state_dir().rglob("*"):
        if path.is_file():
            places[str(path)] = path.read_bytes().decode(errors="replace")
    assert [(where, o) for where, text in places.items() for o in ORIGINALS if o in text] == []
    assert not [p for p in Path("/tmp").glob("devkit-pull-*")]
    # Masked the same way on both sides of the key: every payment has its customer.
    joined = laptop_sql(laptop, "SELECT count(*) FROM payment JOIN customer USING (customer_id)")
    assert joined == [(1200,)]
    # status says where the data came from.
    status = devkit("status", cwd=laptop, env={})
    line_with(status.stdout, "data:", "last pulled from", PLAIN)
    # A second pull with the same key gives the same masked values.
    again = pull(laptop, "ci", "--host", PLAIN, "--yes")
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    line_with(again.stdout, "snapshot pulled-ci", "replaced")
    assert laptop_rows(laptop) == rows


@contextlib.contextmanager
def pull_processes(inventory: Path):
    """While the block runs, this machine's `ssh … devkit db.pull.source` command lines, and
    whether one ran while ansible-inventory read INVENTORY (the server reached as it is read)."""
    from tests.conftest import _polling, command_lines

    seen = {"ssh": set(), "beside_inventory": False}
    path = str(inventory).encode()

    def once() -> None:
        reading = ssh_lines = False
        for line in command_lines():
            argv = line.split(b"\0")
            if any(w.endswith(b"ansible-inventory") for w in argv[:2]) and path in argv:
                reading = True
            if argv[0] == b"ssh" and argv[-2].endswith(b"devkit db.pull.source"):
                seen["ssh"].add(tuple(word.decode() for word in argv[:-1]))
                ssh_lines = True
        if reading and ssh_lines:
            seen["beside_inventory"] = True

    with _polling(once, pause=0.002):
        yield seen


def test_the_next_pull_reaches_the_server_while_the_inventory_is_read(laptop, tmp_path):
    """The last pull's command line is started while ansible-inventory runs, and only used when
    the inventory names it again: a record naming another server, or an inventory whose files
    changed, still pull from the server the inventory names."""
    from devkit.envfile import read_env_file
    from devkit.pull.run import record_path

    # An inventory of its own, so that its files can change (the kit's stays as it is).
    inventory = testhosts.KIT_ROOT / "inventories" / "ci-guess-test"
    shutil.copytree(testhosts.KIT_ROOT / INVENTORY, inventory)
    try:
        first = pull(laptop, str(inventory), "--host", PLAIN, "--yes")
        assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
        with pull_processes(inventory) as seen:
            again = pull(laptop, str(inventory), "--host", PLAIN, "--yes")
        assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
        assert seen["beside_inventory"] and len(seen["ssh"]) == 1, seen
        # The record names the other server's port: that guess is let go, the data is PLAIN's.
        record = record_path(read_env_file(laptop / ".env.local")["DEVKIT_PROJECT_NAME"])
        kept = json.loads(record.read_text())
        port = str(testhosts.HOSTS[PLAIN])
        kept["ssh"] = [str(testhosts.HOSTS[SYSTEMD]) if w == port else w for w in kept["ssh"]]
        record.write_text(json.dumps(kept))
        with pull_processes(inventory) as seen:
            moved = pull(laptop, str(inventory), "--host", PLAIN, "--yes")
        assert moved.returncode == 0, (moved.stdout + moved.stderr)[-3000:]
        # PLAIN's data: its customers (the other server has no such table, so a pull from it
        # fails its rules), and its fleet_probe rows as they are there (which an earlier test
        # may have restored from the other server's backup).
        assert laptop_sql(laptop, "SELECT count(*) FROM customer") == [(300,)]
        there = ssh(PLAIN, f"cd /tmp && {KIT_COMMAND} db.psql -c 'SELECT host FROM fleet_probe'")
        assert there.returncode == 0, there.stderr
        hosts = [host for (host,) in laptop_sql(laptop, "SELECT host FROM fleet_probe")]
        assert hosts and all(host in there.stdout for host in hosts), (hosts, there.stdout)
        absent = ssh(
            SYSTEMD,
            f"cd /tmp && {KIT_COMMAND} db.psql -c \"SELECT to_regclass('public.customer') IS NULL\"",
        )
        assert re.search(r"^\s*t\s*$", absent.stdout, re.MULTILINE), absent.stdout + absent.stderr
        ports = sorted(words[words.index("-p") + 1] for words in seen["ssh"])
        assert ports == sorted([port, str(testhosts.HOSTS[SYSTEMD])]), seen
        # The inventory's files changed since: nothing is started before it is read.
        with (inventory / "hosts.yml").open("a") as hosts:
            hosts.write("# changed\n")
        with pull_processes(inventory) as seen:
            changed = pull(laptop, str(inventory), "--host", PLAIN, "--yes")
        assert changed.returncode == 0, (changed.stdout + changed.stderr)[-3000:]
        assert not seen["beside_inventory"] and len(seen["ssh"]) == 1, seen
    finally:
        shutil.rmtree(inventory)


@pytest.mark.parametrize(
    ("rules", "said"),
    [
        (PULL_RULES + "    note: keep\n", "no column public.payment.note"),
        (PULL_RULES.replace("{fake: city}", "{fake: town}"), "line 6: unknown fake 'town'"),
        (PULL_RULES.replace("  payment:", "payment"), "is not valid YAML"),
        (
            PULL_RULES.replace("    amount: keep\n", ""),
            "1 column without a masking rule: public.payment.amount",
        ),
        (  # passes the server, collides on the laptop's unique index: the rule is named
            PULL_RULES.replace("{fake: email}", "{fixed: same@example.com}"),
            "public.customer.email",
        ),
    ],
)
def test_bad_rules_stop_the_pull_and_change_nothing(laptop, rules, said):
    before = laptop_rows(laptop)
    good = (laptop / "db-pull.yaml").read_text()
    (laptop / "db-pull.yaml").write_text(rules)
    try:
        done = pull(laptop, "ci", "--host", PLAIN, "--yes")
    finally:
        (laptop / "db-pull.yaml").write_text(good)
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "Traceback" not in out, out[-3000:]
    line_with(out, "error:", said)
    assert laptop_rows(laptop) == before


def test_the_servers_own_troubles_are_named_and_change_nothing(laptop, tmp_path):
    before = laptop_rows(laptop)

    def refused(*args: str) -> str:
        done = pull(laptop, *args, "--yes")
        out = done.stdout + done.stderr
        assert done.returncode != 0 and "Traceback" not in out, out[-3000:]
        assert laptop_rows(laptop) == before
        return out

    key = "/root/.local/state/devkit/pull.key"
    assert ssh(PLAIN, f"mv {key} {key}.away").returncode == 0
    try:
        line_with(refused("ci", "--host", PLAIN), "error:", PLAIN, "no masking key")
    finally:
        ssh(PLAIN, f"mv {key}.away {key}")
    assert ssh(SYSTEMD, "mv /usr/local/bin/devkit /usr/local/bin/devkit.away").returncode == 0
    try:
        line_with(refused("ci", "--host", SYSTEMD), "error:", SYSTEMD, "no devkit command")
    finally:
        ssh(SYSTEMD, "mv /usr/local/bin/devkit.away /usr/local/bin/devkit")
    down = testhosts.KIT_ROOT / "inventories" / "ci-down-test"
    down.mkdir(exist_ok=True)
    try:
        (down / "hosts.yml").write_text(
            "all:\n  children:\n    servers:\n      hosts:\n        gone-host:\n"
            "          ansible_host: 127.0.0.1\n          ansible_port: 1\n"
        )
        line_with(refused(str(down)), "error:", "cannot reach gone-host over SSH")
    finally:
        shutil.rmtree(down)
    line_with(refused("no-such-env"), "error:", "no inventory or host named no-such-env")


def test_switching_schedulers_leaves_exactly_one_and_absent_leaves_none(first_run, tmp_path):
    """On the systemd host, a second schedule switched timer -> cron -> timer, then removed:
    each switch leaves exactly one scheduler holding it; `state: absent` removes the unit, the
    timer, the S3 settings file, the command and the cron entry."""
    from devkit.playbook import run_playbook

    playbook = tmp_path / "schedule.yml"
    playbook.write_text(SCHEDULE_ALONE)
    name = "switch-probe"
    variables = {
        "backup_schedule_kit_dir": "/opt/devkit",
        "backup_schedule_app_dir": "/srv/devkit",
        "backup_schedule_name": name,
        "backup_schedule_upload": True,
        "backup_schedule_destination": {"s3_bucket": testhosts.S3_BUCKET},
    }
    state = (
        f"systemctl is-active devkit-backup-{name}.timer; "
        f"ls /etc/systemd/system/devkit-backup-{name}.timer /etc/devkit-backup-{name}.env "
        f"/usr/local/sbin/devkit-backup-{name} 2>/dev/null; crontab -l 2>/dev/null | grep -c {name}"
    )
    wanted = {
        "systemd": ["active", f"/etc/devkit-backup-{name}.env",
                    f"/etc/systemd/system/devkit-backup-{name}.timer",
                    f"/usr/local/sbin/devkit-backup-{name}", "0"],
        "cron": ["inactive", f"/etc/devkit-backup-{name}.env",
                 f"/usr/local/sbin/devkit-backup-{name}", "2"],
        "absent": ["inactive", "0"],
    }  # fmt: skip
    for method in ("auto", "cron", "systemd", "absent"):
        values = {**variables, "backup_schedule_method": "auto" if method == "absent" else method}
        if method == "absent":
            values["backup_schedule_state"] = "absent"
        result = run_playbook(
            playbook, testhosts.KIT_ROOT / INVENTORY, values, echo=False, local=False,
            args=VAULT, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.output[-3000:]
        shown = ssh(SYSTEMD, state).stdout.split()
        assert shown == wanted["systemd" if method == "auto" else method], (method, shown)


# The main both servers are upgraded from: the last one that landed before --serial, the
# stack's memory settings and WAL level (compose.yaml's command: its containers are made anew by
# the upgrade) and the kit's manifest.
PREVIOUS_MAIN = "dae4d7a"
SERVER_PROVISIONING = "/opt/devkit/devkit/provisioning.py"  # the kit's code on a server


def test_a_serial_upgrade_from_the_previous_main_takes_one_server_at_a_time(
    probe_data, invoke, tmp_path
):
    """Both servers provisioned by the previous main (its own code, a git worktree of this
    repository's history), then upgraded with `provision --serial 1`: each host's app-visible
    errors (an authenticated query and a PING every 0.1 s) end before the next host's begin,
    the second host's containers are made only after the first's answer, and the data stays.
    (Without --serial both hosts were down at the same moment: benchmarks/README.md.)"""
    import sys

    with kit_at(PREVIOUS_MAIN, tmp_path / "previous-kit") as previous:
        # The inventory names the controller's key relative to the kit's directory.
        keys = previous / ".devkit" / "ci-hosts"
        keys.mkdir(parents=True)
        for key in (testhosts.KEY, testhosts.KEY.with_suffix(".pub")):
            shutil.copy2(key, keys / key.name)
        older = subprocess.run(
            [str(Path(sys.executable).with_name("invoke")), "--search-root", str(previous),
             "provision", "--inventory", INVENTORY, *VAULT],
            cwd=previous, capture_output=True, text=True, timeout=1500, check=False,
        )  # fmt: skip
        assert older.returncode == 0, older.stdout[-3000:] + older.stderr[-2000:]
        for host in HOSTS:  # the previous kit's code runs there
            assert ssh(host, f"grep -c serial_value {SERVER_PROVISIONING}").stdout.strip() == "0"

        with testhosts.app_probes(HOSTS) as failures:
            result = invoke("provision", "--inventory", INVENTORY, *VAULT, "--serial", "1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert all(changed > 0 for _, changed in recap(result.stdout).values()), result.stdout
    first, second = HOSTS  # the batches follow the inventory's order
    # The second host's containers were made after the first host's had started (the kernel's
    # clock is the hosts' one clock), and what the app saw agrees.
    assert max(container_times(first, "StartedAt")) < min(container_times(second, "Created"))
    assert failures[first] or failures[second], failures  # a stack was made anew under the app
    if failures[first] and failures[second]:
        assert max(failures[first]) < min(failures[second]), failures
    for host in HOSTS:
        window = max(failures[host]) - min(failures[host]) if failures[host] else 0
        print(f"{host}: {len(failures[host])} failed probes over {window:.1f} s")
        kept = ssh(host, f"cd /tmp && {KIT_COMMAND} db.psql -c 'SELECT count(*) FROM fleet_probe'")
        assert kept.returncode == 0 and " 2\n" in kept.stdout, kept.stdout + kept.stderr
        assert ssh(host, f"grep -c serial_value {SERVER_PROVISIONING}").stdout.strip() != "0"


def container_times(host: str, field: str) -> list[float]:
    """The Unix times of FIELD (Created, StartedAt) of the host's stack containers."""
    from datetime import datetime

    shown = ssh(
        host,
        f"docker inspect -f '{{{{.{'State.' if field == 'StartedAt' else ''}{field}}}}}' "
        "devkit-postgres-1 devkit-redis-1",
    ).stdout.split()
    assert len(shown) == 2, shown
    # RFC 3339 with nanoseconds: Python takes microseconds.
    return [
        datetime.fromisoformat(re.sub(r"(\.\d{6})\d*", r"\1", t).replace("Z", "+00:00")).timestamp()
        for t in shown
    ]


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
    answered = ssh(host, f"cd /tmp && {KIT_COMMAND} db.psql -c 'SELECT count(*) FROM fleet_probe'")
    assert answered.returncode == 0 and "2" in answered.stdout, answered.stdout + answered.stderr
