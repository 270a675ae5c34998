"""db.upload, db.download, db.list-remote, db.prune-remote: backups in the backup destination
(devkit/destinations: S3 or an S3-compatible store, or a directory such as a NAS mount)."""

from __future__ import annotations

from pathlib import Path

from invoke import task

from devkit.tasks._cli import confirm, reports_errors
from devkit.tasks._output import kib


@task(help={"file": "The backup file (a path, or a name in the backup directory)"})
@reports_errors
def upload(c, file):
    """Copy a backup to the backup destination (S3 or a directory) after checking it, with its SHA-256."""
    from devkit.backup.fileformat import backup_to_read
    from devkit.destinations import destination_of

    destination = destination_of(c.config.devkit)
    print(f"uploaded to {destination.upload(backup_to_read(c.config.devkit, file))}")


FROM_HOST_HELP = {
    "from-host": "On a server: another server's backups (its S3 prefix: this one's with that host's name)",
}


@task(
    help={
        "name": "The backup's name in the destination",
        "output-dir": "Where to save it (default: the backup directory)",
        **FROM_HOST_HELP,
    }
)
@reports_errors
def download(c, name, output_dir=None, from_host=None):
    """Fetch a backup from the backup destination, checked against its SHA-256, into the backup directory."""
    from devkit.backup.fileformat import apply_limits
    from devkit.backup.files import backup_dir
    from devkit.destinations import destination_of

    apply_limits(c.config.devkit)
    directory = Path(output_dir).expanduser() if output_dir else backup_dir(c.config.devkit)
    print(destination_of(c.config.devkit, from_host).download(name, directory))


@task(name="list-remote", help=FROM_HOST_HELP)
@reports_errors
def list_remote(c, from_host=None):
    """List the backups in the backup destination, newest first."""
    from devkit.destinations import destination_of

    destination = destination_of(c.config.devkit, from_host)
    backups = destination.list()
    if not backups:
        print(f"no backups in {destination.label}")
    for b in backups:
        print(f"{b.name}  {kib(b.size):>12}  {b.modified:%Y-%m-%d %H:%M:%S}")


@task(
    name="prune-remote",
    help={
        "retention-days": "Keep this many days (default: BACKUP_RETENTION_DAYS, else "
        "devkit.backup_retention_days)",
        "dry-run": "Only list what would be deleted",
        "yes": "Do not ask (required without a terminal)",
    },
)
@reports_errors
def prune_remote(c, retention_days=None, dry_run=False, yes=False):
    """Delete the backups in the backup destination older than the retention, never the newest."""
    from devkit.backup.files import retention_days as days_to_keep
    from devkit.destinations import destination_of
    from devkit.destinations.base import to_prune

    days = days_to_keep(c.config.devkit, retention_days)
    destination = destination_of(c.config.devkit)
    doomed = to_prune(destination.list(), days)
    if not doomed:
        print(f"nothing older than {days} days in {destination.label} (the newest is always kept)")
        return
    for backup in doomed:
        print(
            f"{'would delete' if dry_run else 'delete'}: {backup.name}  {backup.modified:%Y-%m-%d}"
        )
    if dry_run:
        print("Dry run: nothing deleted.")
        return
    confirm(
        yes,
        "prune-remote deletes backups",
        f"Delete these {len(doomed)} backup(s) from {destination.label}?",
    )
    for backup in doomed:
        destination.delete(backup.name)
    print(f"deleted {len(doomed)} backup(s) from {destination.label}")


TASKS = (upload, download, list_remote, prune_remote)
