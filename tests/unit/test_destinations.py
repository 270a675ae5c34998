"""Every backup destination keeps the same contract (devkit/destinations/base.py): the same tests
run against a directory and against S3 (moto's threaded S3 server on loopback, a real HTTP S3
endpoint)."""

import os
import time
from datetime import UTC, datetime

import pytest

from devkit.backup.fileformat import BackupWriter, CorruptBackup
from devkit.backup.models import BackupMetadata
from devkit.destinations import DestinationError, destination_of
from devkit.destinations.directory import Directory
from devkit.errors import SettingsError

pytestmark = pytest.mark.unit

BUCKET = "devkit-destinations"


def backup(directory, when: datetime):
    directory.mkdir(exist_ok=True)
    writer = BackupWriter(
        directory,
        BackupMetadata(
            timestamp=when, migration_version="a1", database_name="db", database_host="h"
        ),
    )
    writer.begin_table("public.t", ["a"], ["integer"])
    writer.write_rows(["1", "2"])
    writer.end_table()
    return writer.finish()


@pytest.fixture(params=["directory", "s3"])
def destination(request, tmp_path, monkeypatch):
    if request.param == "directory":
        root = tmp_path / "nas"
        root.mkdir()
        yield Directory(root)
        return
    import boto3

    endpoint = request.getfixturevalue("s3_endpoint")
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    yield destination_of({"s3_bucket": BUCKET, "s3_endpoint_url": endpoint})
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _tamper(destination, name):
    """Change the stored backup's bytes behind the kit's back (its recorded SHA-256 stays)."""
    if isinstance(destination, Directory):
        (destination.root / name).write_bytes(b"\x1f\x8b not the backup")
    else:
        destination.client().put_object(
            Bucket=destination.name,
            Key=destination.key(name),
            Body=b"\x1f\x8b not the backup",
            Metadata={"sha256": "0" * 64},
        )


def test_a_backup_goes_there_and_comes_back_the_same(destination, tmp_path):
    made = backup(tmp_path / "local", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    where = destination.upload(made)
    assert made.name in where
    assert [b.name for b in destination.list()] == [made.name]
    got = destination.download(made.name, tmp_path / "elsewhere")
    assert got.read_bytes() == made.read_bytes()
    assert oct(got.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in got.parent.iterdir()) == [".gitignore", made.name]


def test_a_damaged_file_is_never_uploaded(destination, tmp_path):
    made = backup(tmp_path, datetime(2026, 1, 2, tzinfo=UTC))
    made.write_bytes(made.read_bytes()[:-40])
    with pytest.raises(CorruptBackup):
        destination.upload(made)
    assert destination.list() == []


def test_a_backup_changed_there_is_refused_and_nothing_is_left(destination, tmp_path):
    made = backup(tmp_path / "local", datetime(2026, 1, 2, tzinfo=UTC))
    destination.upload(made)
    _tamper(destination, made.name)
    target = tmp_path / "down"
    with pytest.raises(CorruptBackup, match="does not match the SHA-256 recorded at upload"):
        destination.download(made.name, target)
    assert sorted(p.name for p in target.iterdir()) == [".gitignore"]


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "backups/x", "backup_20260101_000000.backup.gz\n"]
)
def test_only_a_backups_own_name_is_taken(destination, tmp_path, name):
    with pytest.raises(SettingsError, match="is not a backup name"):
        destination.download(name, tmp_path)


def test_prune_deletes_the_old_ones_and_never_the_newest(destination, tmp_path):
    names = [
        backup(tmp_path / "local", datetime(2026, 1, day, tzinfo=UTC)).name for day in (1, 2, 3)
    ]
    for name in names:
        destination.upload(tmp_path / "local" / name)
    assert destination.prune(7) == []  # all of them were just stored
    gone = destination.prune(1, now=time.time() + 30 * 86400)
    kept = [b.name for b in destination.list()]
    assert len(kept) == 1 and sorted([*kept, *(b.name for b in gone)]) == sorted(names)


def test_a_directory_that_is_not_there_is_never_made(tmp_path):
    """A NAS share that is not mounted: nothing is written under its mount point."""
    made = backup(tmp_path, datetime(2026, 1, 2, tzinfo=UTC))
    absent = Directory(tmp_path / "mnt" / "nas")
    with pytest.raises(DestinationError, match="is not a directory here"):
        absent.upload(made)
    assert not (tmp_path / "mnt").exists()


def test_a_link_planted_in_the_directory_is_neither_listed_nor_followed(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("not yours")
    root = tmp_path / "nas"
    root.mkdir()
    name = "backup_20260101_000000.backup.gz"
    os.symlink(secret, root / name)
    destination = Directory(root)
    assert destination.list() == []
    with pytest.raises(DestinationError, match="is a link"):
        destination.download(name, tmp_path / "down")
    destination.delete(name)
    assert secret.read_text() == "not yours" and (root / name).is_symlink()


@pytest.mark.parametrize(
    ("settings", "chosen"),
    [
        ({"s3_bucket": "bucket"}, "S3"),
        ({"backup_destination": "s3", "s3_bucket": "bucket"}, "S3"),
        ({"backup_destination": "/mnt/nas/backups", "s3_bucket": "bucket"}, "Directory"),
    ],
)
def test_the_settings_choose_the_destination(settings, chosen):
    assert type(destination_of(settings)).__name__ == chosen


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "no S3 bucket is set"),
        ({"backup_destination": "s3"}, "no S3 bucket is set"),
        ({"backup_destination": "nas/backups"}, "backup_destination"),
        ({"backup_destination": "/mnt/\nnas"}, "backup_destination"),
    ],
)
def test_a_missing_or_bad_destination_is_named(settings, message):
    with pytest.raises(SettingsError, match=message):
        destination_of(settings)
