"""Local backup files: their names, atomic writes, listing and retention."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from devkit.app import resolve_app_dir
from devkit.errors import DevkitError

PATTERNS = ("backup_*.backup.gz", "backup_*.dump")
PARTIAL = ".backup_*.partial"


class BackupWriteError(DevkitError):
    """A backup file could not be written (disk full, no permission); nothing was kept."""


def write_failed(directory: Path, exc: OSError) -> BackupWriteError:
    if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        hint = (
            f"free space in {directory} (df -h {directory}), or write elsewhere with --output-dir"
        )
    else:
        hint = f"check that you may write in {directory}, or write elsewhere with --output-dir"
    return BackupWriteError(
        f"cannot write the backup in {directory}: {exc.strerror or exc}; nothing was kept", hint
    )


@dataclass(frozen=True)
class NewBackupFile:
    """A backup being written: `partial` (hidden, opened exclusively as `fd`) until it is
    complete and takes its name, `path`."""

    path: Path
    partial: Path
    fd: int


def new_backup_file(
    directory: Path, when: datetime, suffix: str, prefix: str = "backup"
) -> NewBackupFile:
    """backup_YYYYMMDD_HHMMSS<suffix>, or _2, _3 ... when a backup of the same second exists or is
    being written: its partial file is created with O_EXCL (two backups never share one) and
    O_NOFOLLOW (never written through a link someone left there), mode 0600 from the start."""
    base = f"{prefix}_{when:%Y%m%d_%H%M%S}"
    from devkit.app_repo import ignore_directory

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    ignore_directory(directory)  # backups hold the app's data: never in its git repository
    remove_abandoned(directory)
    for n in itertools.count(1):
        name = f"{base}{suffix}" if n == 1 else f"{base}_{n}{suffix}"
        path = directory / name
        if os.path.lexists(path):
            continue
        partial = directory / f".{name}.partial"
        try:
            fd = os.open(partial, flags, 0o600)
        except FileExistsError:
            continue
        # Held until the file is published or removed; the kernel lets it go when the writer
        # dies (kill -9 included), which is how remove_abandoned tells a live write from a dead.
        fcntl.flock(fd, fcntl.LOCK_EX)
        return NewBackupFile(path, partial, fd)
    raise AssertionError("unreachable")


ABANDONED_AFTER = 60.0  # seconds: a partial file younger than this is never touched


def remove_abandoned(directory: Path) -> list[Path]:
    """The partial files in DIRECTORY whose writer is gone (killed: no lock on them), removed;
    one being written by another backup holds its lock and is left."""
    from devkit.paths import remove_kit_file

    removed = []
    for partial in directory.glob(PARTIAL):
        try:
            fd = os.open(partial, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if os.fstat(fd).st_mtime > time.time() - ABANDONED_AFTER:
                continue
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue  # written now
        finally:
            os.close(fd)
        if remove_kit_file(partial, directory):
            removed.append(partial)
    return removed


def publish(new: NewBackupFile) -> Path:
    """Give a complete (fsynced) partial file its name, durably."""
    os.replace(new.partial, new.path)
    dir_fd = os.open(new.path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return new.path


@contextlib.contextmanager
def written_backup(
    directory: Path, when: datetime, suffix: str, prefix: str = "backup"
) -> Iterator[tuple[NewBackupFile, Any]]:
    """A new backup file (new_backup_file) and its open binary file, for the block to fill: made
    durable and given its name when the block ends, removed when it fails. A failed write (disk
    full, no permission) becomes BackupWriteError. Its path: the yielded NewBackupFile's `path`."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        new = new_backup_file(directory, when, suffix, prefix)
    except OSError as exc:
        raise write_failed(directory, exc) from None
    try:
        with os.fdopen(new.fd, "wb") as out:
            yield new, out
            out.flush()
            os.fsync(out.fileno())
        publish(new)
    except OSError as exc:
        raise write_failed(directory, exc) from None
    finally:
        new.partial.unlink(missing_ok=True)


def backup_dir(config: Mapping[str, Any]) -> Path:
    app_dir = resolve_app_dir(str(config.get("app_dir") or ""))
    return backups_of(app_dir, str(config.get("backup_dir") or ""))


def backups_of(app_dir: Path, configured: str) -> Path:
    """Where an app's backups go: the backup_dir setting (relative to the app, or absolute),
    else <app>/backups."""
    return (app_dir / configured if configured else app_dir / "backups").resolve()


def backup_path(config: Mapping[str, Any], file: str) -> Path:
    """A backup FILE as given, or a bare name looked up in the backup directory."""
    path = Path(file).expanduser()
    if not path.exists() and not path.is_absolute() and len(path.parts) == 1:
        candidate = backup_dir(config) / path
        if candidate.exists():
            return candidate
    return path


def retention_days(config: Mapping[str, Any], flag: str | int | None) -> int:
    """Days to keep: the flag, else BACKUP_RETENTION_DAYS, else the setting; a whole number
    within the setting's limits (0 or less would delete every backup but the newest)."""
    from devkit.errors import SettingsError
    from devkit.settings.table import SETTINGS

    limits = SETTINGS["backup_retention_days"].limits
    if flag is not None:
        value, source, fix = flag, "--retention-days", "pass --retention-days 1 or more"
    elif os.environ.get("BACKUP_RETENTION_DAYS") is not None:
        value, source = os.environ["BACKUP_RETENTION_DAYS"], "BACKUP_RETENTION_DAYS"
        fix = "set BACKUP_RETENTION_DAYS to 1 or more (or unset it)"
    else:
        value, source = config["backup_retention_days"], "devkit.backup_retention_days"
        fix = "set devkit.backup_retention_days to 1 or more in invoke.yaml"
    try:
        days = int(str(value).strip())
    except ValueError:
        days = 0
    if not limits["ge"] <= days <= limits["le"]:
        raise SettingsError(
            f"{source}={value!r} is not a number of days from {limits['ge']} to {limits['le']}",
            fix,
        )
    return days


@dataclass(frozen=True)
class LocalBackup:
    path: Path
    size: int
    mtime: float


def list_backups(directory: Path) -> list[LocalBackup]:
    """Newest first."""
    paths = [p for pattern in PATTERNS for p in directory.glob(pattern) if p.is_file()]
    found = [LocalBackup(p, p.stat().st_size, p.stat().st_mtime) for p in paths]
    return sorted(found, key=lambda b: (b.mtime, b.path.name), reverse=True)


@dataclass(frozen=True)
class PrunePlan:
    delete: list[Path]
    kept_newest_verified: Path | None


def plan_prune(directory: Path, days: int, intact, now: float | None = None) -> PrunePlan:
    """Backups older than `days` and leftover partial files; never the newest intact backup
    (`intact(path)` says which is; the newest is found before anything is deleted)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    now = now or time.time()
    cutoff = now - days * 86400
    backups = list_backups(directory)
    newest_intact = next((b.path for b in backups if intact(b.path)), None)
    old = [b.path for b in backups if b.mtime < cutoff and b.path != newest_intact]
    partial = [p for p in directory.glob(PARTIAL) if p.stat().st_mtime < now - 3600]
    return PrunePlan(old + partial, newest_intact)
