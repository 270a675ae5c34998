"""The backup_schedule role for real: a cron entry (BACKUP_CRON), a command that
backs up and prunes, and both removed again."""

import subprocess
from pathlib import Path

import pytest

from devkit.backup.reader import verify
from devkit.paths import KIT_ROOT, LOCAL_INVENTORY
from devkit.playbook import run_playbook

pytestmark = [pytest.mark.ansible, pytest.mark.docker, pytest.mark.machine(shared=True)]

NAME = "devkit-test-schedule"
PLAYBOOK = """
- name: Apply the backup_schedule role alone
  hosts: workstations
  gather_facts: false
  roles:
    - role: backup_schedule
      become: true
"""


def apply(tmp_path, **variables):
    playbook = tmp_path / "schedule.yml"
    playbook.write_text(PLAYBOOK)
    return run_playbook(playbook, LOCAL_INVENTORY, variables, echo=False)


def crontab() -> str:
    return subprocess.run(["crontab", "-l"], capture_output=True, text=True, check=False).stdout


def test_schedule_runs_a_backup_then_goes_away(stack, tmp_path):
    variables = {
        "backup_schedule_kit_dir": str(KIT_ROOT),
        "backup_schedule_app_dir": str(stack.app_dir),
        "backup_schedule_name": NAME,
        "backup_schedule_cron": "15 2 * * 1-5",
        "backup_schedule_retention_days": 3,
    }
    try:
        first = apply(tmp_path, **variables)
        assert first.changed >= 2
        entry = f"15 2 * * 1-5 umask 077; /usr/local/sbin/devkit-backup-{NAME} >> /var/log/devkit-backup-{NAME}.log 2>&1"
        assert f"#Ansible: devkit backup {NAME}\n{entry}" in crontab()
        log = Path(f"/var/log/devkit-backup-{NAME}.log")
        assert log.stat().st_mode & 0o777 == 0o600
        assert apply(tmp_path, **variables).changed == 0
        # Run it once, as cron would: no terminal, a bare environment.
        ran = subprocess.run(
            [f"/usr/local/sbin/devkit-backup-{NAME}"],
            env={
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": "/root",
            },
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=300,
            check=False,
        )
        assert ran.returncode == 0, ran.stdout + ran.stderr
        written = ran.stdout.split("backup written: ")[1].split()[0]
        report = verify(stack.app_dir / "backups" / written.split("/")[-1])
        assert "public.sample_users" in report.tables and report.checksum
    finally:
        apply(tmp_path, **variables, backup_schedule_state="absent")
    assert f"devkit backup {NAME}" not in crontab()
    assert not Path(f"/usr/local/sbin/devkit-backup-{NAME}").exists()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"backup_schedule_retention_days": 0}, "retention_days=0: .*greater than or equal to 1"),
        ({"backup_schedule_retention_days": -3}, "retention_days=-3: .*greater than or equal to 1"),
        ({"backup_schedule_name": "Bad_Name"}, "backup_schedule_name=Bad_Name: .*pattern"),
        ({"backup_schedule_log": "/var/log/a b; touch /tmp/pwned"}, "absolute path of letters"),
        ({"backup_schedule_user": "nobody"}, "cannot read"),
    ],
)
def test_schedule_refuses_what_could_never_run_or_would_delete_too_much(
    stack, tmp_path, bad, message
):
    from devkit.errors import DevkitError

    variables = {
        "backup_schedule_kit_dir": str(KIT_ROOT),
        "backup_schedule_app_dir": str(stack.app_dir),
        "backup_schedule_name": NAME,
        **bad,
    }
    with pytest.raises(DevkitError, match=message):
        apply(tmp_path, **variables)
    assert f"devkit backup {NAME}" not in crontab()
    assert not Path(f"/usr/local/sbin/devkit-backup-{NAME}").exists()
    assert not Path("/tmp/pwned").exists()


RENDER = """
- name: Render the backup_schedule role's systemd units
  hosts: workstations
  gather_facts: false
  vars:
    backup_schedule_name: nightly
    backup_schedule_cron: "15 2 * * 1-5"
    backup_schedule_user: root
    backup_schedule_log: /var/log/devkit-backup-nightly.log
  tasks:
    - name: Render each unit
      ansible.builtin.template:
        src: "{{ kit }}/roles/backup_schedule/templates/backup.{{ item }}.j2"
        dest: "{{ out }}/devkit-backup-nightly.{{ item }}"
        mode: "0644"
      loop: [service, timer]
"""


def test_timer_variant_units_pass_systemd_analyze_verify(tmp_path):
    """The timer variant's enable/start needs systemd as init, which neither this machine nor
    the CI test hosts run; its units are checked by systemd's own verifier instead."""
    playbook = tmp_path / "render.yml"
    playbook.write_text(RENDER)
    run_playbook(
        playbook,
        LOCAL_INVENTORY,
        {"kit": str(KIT_ROOT), "out": str(tmp_path)},
        echo=False,
        env={"ANSIBLE_FILTER_PLUGINS": str(KIT_ROOT / "roles/backup_schedule/filter_plugins")},
    )
    timer = (tmp_path / "devkit-backup-nightly.timer").read_text()
    assert "OnCalendar=Mon..Fri *-*-* 02:15:00" in timer and "Persistent=true" in timer
    service = (tmp_path / "devkit-backup-nightly.service").read_text()
    assert "ExecStart=/usr/local/sbin/devkit-backup-nightly\n" in service
    assert "UMask=0077" in service
    assert "StandardOutput=append:/var/log/devkit-backup-nightly.log" in service
    # systemd-analyze checks that ExecStart is an executable: the role installs the command
    # with the units; a stand-in here (the real one is run by test_schedule_runs_a_backup...).
    command = Path("/usr/local/sbin/devkit-backup-nightly")
    assert not command.exists()
    command.write_text("#!/bin/sh\nexit 0\n")
    command.chmod(0o755)
    try:
        checked = subprocess.run(
            [
                "systemd-analyze",
                "verify",
                "--man=no",
                *(str(p) for p in sorted(tmp_path.glob("devkit-*"))),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        command.unlink()
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_s3_credentials_file_is_private_from_its_first_byte(stack, tmp_path, private_watch):
    """While the role writes /etc/devkit-backup-NAME.env, the file is never readable by others
    once it holds anything (was: a new file, 0644 until the mode was set after the write)."""
    env_file = Path(f"/etc/devkit-backup-{NAME}.env")
    variables = {
        "backup_schedule_kit_dir": str(KIT_ROOT),
        "backup_schedule_app_dir": str(stack.app_dir),
        "backup_schedule_name": NAME,
        "backup_schedule_upload": True,
        "backup_schedule_destination": {"s3_bucket": "devkit-test-bucket"},
        "backup_schedule_credentials": {
            "AWS_ACCESS_KEY_ID": "AKIADEVKITTEST",
            "AWS_SECRET_ACCESS_KEY": "devkit-test-secret-key",
        },
    }
    try:
        with private_watch(env_file) as exposed:
            apply(tmp_path, **variables)
        assert env_file.stat().st_mode & 0o777 == 0o600
        assert "devkit-test-secret-key" in env_file.read_text()
    finally:
        apply(tmp_path, **variables, backup_schedule_state="absent")
    assert exposed == []
    assert not env_file.exists()
