"""What every backup destination does (pipx's backends/_base.py shape): list the backups there,
upload one (checked first, its SHA-256 recorded beside it), download one (checked against that
SHA-256 and verified before it takes a backup's name on disk), prune the old ones (never the
newest). Only a backup's own file name is ever used: no path, no traversal.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from devkit.errors import DevkitError, SettingsError

NAME = re.compile(r"^backup_\d{8}_\d{6}(_\d+)?\.backup\.gz$")


class DestinationError(DevkitError):
    """The destination refused or failed a request."""


@dataclass(frozen=True)
class StoredBackup:
    name: str
    size: int
    modified: datetime


def check_name(name: str) -> str:
    """Only a backup's own file name: no path, no traversal."""
    if not NAME.fullmatch(name):
        raise SettingsError(
            f"{name!r} is not a backup name (backup_YYYYMMDD_HHMMSS.backup.gz)",
            "see `devkit db.list-remote`",
        )
    return name


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def newest_first(found: list[StoredBackup]) -> list[StoredBackup]:
    return sorted(found, key=lambda b: (b.modified, b.name), reverse=True)


def to_prune(found: list[StoredBackup], days: int, now: float | None = None) -> list[StoredBackup]:
    """The backups older than `days`, never the newest one."""
    if days < 1:
        raise ValueError("days must be at least 1")
    cutoff = (now or time.time()) - days * 86400
    ordered = newest_first(found)
    return [b for b in ordered[1:] if b.modified.timestamp() < cutoff]


class Destination(ABC):
    """Where backups are copied to, away from this machine."""

    @property
    @abstractmethod
    def label(self) -> str:
        """Where it is, as the user set it (s3://bucket/prefix/, /mnt/nas/backups)."""

    @abstractmethod
    def list(self) -> list[StoredBackup]:
        """The backups there, newest first."""

    @abstractmethod
    def upload(self, path: Path) -> str:
        """Copy the backup at PATH there (verified first, its SHA-256 recorded); where it is."""

    @abstractmethod
    def _fetch(self, name: str, out: BinaryIO) -> str:
        """Write backup NAME's bytes to OUT; the SHA-256 recorded at upload ("" when none)."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Remove backup NAME (and what was recorded beside it)."""

    def download(self, name: str, directory: Path) -> Path:
        """Backup NAME fetched into DIRECTORY, written to a private partial file, checked against
        the SHA-256 recorded at upload and verified, then given its name."""
        from devkit.app_repo import ignore_directory

        check_name(name)
        directory.mkdir(parents=True, exist_ok=True)
        ignore_directory(directory)  # backups hold the app's data: never in its git repository
        return receive(directory, name, lambda out: self._fetch(name, out), self.label)

    def prune(self, days: int, now: float | None = None) -> list[StoredBackup]:
        """Delete the backups older than DAYS there, never the newest; the ones deleted."""
        doomed = to_prune(self.list(), days, now)
        for backup in doomed:
            self.delete(backup.name)
        return doomed


def receive(directory: Path, name: str, fetch: Callable[[BinaryIO], str], where: str) -> Path:
    """Write what FETCH writes into a file that is the kit's own (O_EXCL, never through a link)
    and private (0600) from its first byte; check it against the SHA-256 FETCH returns and
    verify it; only then rename it to NAME. Nothing is left behind on a failure."""
    from devkit.backup.fileformat import CorruptBackup
    from devkit.backup.reader import verify

    target = directory / name
    partial = directory / f".{name}.partial"
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise DestinationError(
            f"{partial} exists: another download of {name} is under way, or one was cut off",
            f"wait for it, or remove {partial}",
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            expected = fetch(out)
            out.flush()
            os.fsync(out.fileno())
        if expected and sha256_of(partial) != expected:
            raise CorruptBackup(
                f"{name} in {where} does not match the SHA-256 recorded at upload",
                "the backup was changed or damaged there",
            )
        verify(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target
