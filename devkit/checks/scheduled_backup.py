"""The scheduled backup of a server (playbooks/site.yml, role backup_schedule): installed, and a
backup produced by running it once, checked by the kit on that host."""

import pytest

pytestmark = pytest.mark.infra


@pytest.fixture(scope="module")
def schedule(deployment):
    if not deployment.backup_schedule:
        pytest.skip("no scheduled backup for this host (inventory: devkit_backup_enabled)")
    return f"/usr/local/sbin/devkit-backup-{deployment.project}"


def test_backup_is_scheduled(host, deployment, schedule):
    assert host.file(schedule).is_file and host.file(schedule).mode == 0o755
    from devkit.backup.last_run import log_file

    assert host.file(str(log_file(deployment.project))).mode == 0o600
    timer = host.file(f"/etc/systemd/system/devkit-backup-{deployment.project}.timer")
    if timer.exists:
        assert host.run(f"systemctl is-active devkit-backup-{deployment.project}.timer").rc == 0
    else:
        assert host.process.filter(comm="cron"), "cron is not running"
        entries = host.check_output("crontab -l")
        assert f"#Ansible: devkit backup {deployment.project}\n" in entries + "\n"
        assert f"umask 077; {schedule} >> {log_file(deployment.project)} 2>&1" in entries


def test_its_last_run_did_not_fail(host, deployment, schedule):
    """What the job left when it last ran on its own (before the run below replaces it): a
    failed night is a failed check, with when and the exit code."""
    from devkit.backup.last_run import parse, status_file

    status = host.file(str(status_file(deployment.project)))
    assert status.exists, f"{status.path} is missing: provision the host again"
    run = parse(status.content_string)  # None: it has not run yet, nothing failed
    assert run is None or run.ok, (
        f"the last scheduled backup failed (exit {run.code}) at {run.at.isoformat()}"
    )


def test_running_it_once_writes_a_backup_that_verifies(host, deployment, schedule):
    # As cron runs it: a bare environment, no terminal.
    ran = host.run(f"env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root {schedule} </dev/null")
    assert ran.rc == 0, ran.stdout + ran.stderr
    written = ran.stdout.split("backup written: ")[1].split()[0]
    app_dir = deployment.env_file.rsplit("/", 1)[0]
    assert written.startswith(f"{app_dir}/backups/backup_") and written.endswith(".backup.gz")
    # The kit on the host reads its own file back: every table's rows and the SHA-256.
    verified = host.run(
        f"{deployment.kit_dir}/.venv/bin/invoke --search-root {deployment.kit_dir} db.verify {written}"
    )
    assert verified.rc == 0, verified.stdout + verified.stderr
    assert ": OK — " in verified.stdout and "SHA-256 verified" in verified.stdout
    from devkit.backup.last_run import parse, status_file

    left = parse(host.file(str(status_file(deployment.project))).content_string)
    assert left is not None and left.ok and left.code == 0
