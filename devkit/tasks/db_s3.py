"""db.upload, db.download, db.list-remote: backups in S3 (or an S3-compatible store)."""

from __future__ import annotations

from pathlib import Path

from invoke import task

from devkit.tasks._cli import reports_errors
from devkit.tasks._output import kib


@task(help={"file": "The backup file (a path, or a name in the backup directory)"})
@reports_errors
def upload(c, file):
    """Upload a backup to S3 (devkit.s3_bucket) after checking it; the object carries its SHA-256."""
    from devkit.backup.files import backup_to_read
    from devkit.backup.remote import bucket_of
    from devkit.backup.remote import upload as put

    print(f"uploaded to {put(bucket_of(c.config.devkit), backup_to_read(c.config.devkit, file))}")


@task(
    help={
        "name": "The backup's name in the bucket",
        "output-dir": "Where to save it (default: the backup directory)",
    }
)
@reports_errors
def download(c, name, output_dir=None):
    """Download a backup from S3, checked against its SHA-256, into the backup directory."""
    from devkit.backup.fileformat import apply_limits
    from devkit.backup.files import backup_dir
    from devkit.backup.remote import bucket_of
    from devkit.backup.remote import download as get

    apply_limits(c.config.devkit)
    directory = Path(output_dir).expanduser() if output_dir else backup_dir(c.config.devkit)
    print(get(bucket_of(c.config.devkit), name, directory))


@task(name="list-remote")
@reports_errors
def list_remote(c):
    """List the backups in S3, newest first."""
    from devkit.backup.remote import bucket_of
    from devkit.backup.remote import list_remote as remote_backups

    bucket = bucket_of(c.config.devkit)
    backups = remote_backups(bucket)
    if not backups:
        print(f"no backups in s3://{bucket.name}/{bucket.prefix}")
    for b in backups:
        print(f"{b.name}  {kib(b.size):>12}  {b.modified:%Y-%m-%d %H:%M:%S}")


TASKS = (upload, download, list_remote)
