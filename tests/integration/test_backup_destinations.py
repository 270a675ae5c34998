"""A directory as the backup destination (a NAS share mounted here), through the tasks a user
runs on the real stack: upload, list, restore from it, prune it."""

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


@pytest.fixture
def nas(tmp_path):
    root = tmp_path / "nas"
    root.mkdir()
    env = {
        "INVOKE_DEVKIT_BACKUP_DESTINATION": str(root),
        "INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path / "local"),
    }
    return root, env


def test_a_directory_destination_takes_and_gives_back_backups(stack, nas):
    root, env = nas
    made = stack.invoke("db.backup", extra_env=env)
    assert made.returncode == 0, made.stderr
    path = Path(made.stdout.strip().splitlines()[-1])
    up = stack.invoke("db.upload", str(path), extra_env=env)
    assert up.returncode == 0, up.stderr
    assert f"uploaded to {root / path.name}" in up.stdout
    assert (root / path.name).read_bytes() == path.read_bytes()
    assert (root / f"{path.name}.sha256").read_text().split()[0] and oct(
        (root / path.name).stat().st_mode & 0o777
    ) == "0o600"
    assert path.name in stack.invoke("db.list-remote", extra_env=env).stdout

    os.remove(path)  # the restore fetches it from the destination
    restored = stack.invoke("db.restore-remote", path.name, "--yes", extra_env=env)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "Restore completed" in restored.stdout
    assert path.read_bytes() == (root / path.name).read_bytes()
    stack.drop_automatic_snapshots()

    dry = stack.invoke("db.prune-remote", "--dry-run", extra_env=env)
    assert dry.returncode == 0 and "the newest is always kept" in dry.stdout, dry.stdout


def test_a_destination_that_is_not_mounted_is_named_and_left_alone(stack, nas, tmp_path):
    _, env = nas
    env = {**env, "INVOKE_DEVKIT_BACKUP_DESTINATION": str(tmp_path / "mnt" / "nas")}
    listed = stack.invoke("db.list-remote", extra_env=env)
    assert listed.returncode == 1
    assert "is not a directory here" in listed.stderr and "Traceback" not in listed.stderr
    assert not (tmp_path / "mnt").exists()


def test_prune_remote_asks_and_never_deletes_without_a_terminal(stack, nas):
    root, env = nas
    made = stack.invoke("db.backup", extra_env=env)
    older = Path(made.stdout.strip().splitlines()[-1])
    assert stack.invoke("db.upload", str(older), extra_env=env).returncode == 0
    os.utime(root / older.name, (1, 1))  # 1970: older than any retention
    newer = stack.invoke("db.backup", extra_env=env).stdout.strip().splitlines()[-1]
    assert stack.invoke("db.upload", newer, extra_env=env).returncode == 0
    refused = stack.invoke("db.prune-remote", extra_env=env)
    assert refused.returncode != 0 and (root / older.name).exists()
    done = stack.invoke("db.prune-remote", "--yes", extra_env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"delete: {older.name}" in done.stdout
    assert not (root / older.name).exists() and not (root / f"{older.name}.sha256").exists()
    assert (root / Path(newer).name).exists()
