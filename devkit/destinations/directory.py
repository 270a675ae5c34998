"""A directory: a NAS share or a second disk mounted on this machine. Each backup is a file
there with its SHA-256 beside it (`NAME.sha256`, as sha256sum writes it). The directory must
exist: a share that is not mounted is refused, never filled on the local disk under its mount
point. Entries that are not regular files (a link planted there) are neither listed nor read."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from devkit.destinations.base import (
    NAME,
    Destination,
    DestinationError,
    StoredBackup,
    check_name,
    newest_first,
    sha256_of,
)


@dataclass(frozen=True)
class Directory(Destination):
    root: Path

    @property
    def label(self) -> str:
        return str(self.root)

    def _checked_root(self) -> Path:
        if not self.root.is_dir():
            raise DestinationError(
                f"the backup destination {self.root} is not a directory here (a share not "
                "mounted?)",
                f"mount it, or create it (mkdir -p {self.root}), or set devkit.backup_destination",
            )
        return self.root

    def _open(self, name: str) -> int:
        """A file descriptor of backup NAME's regular file there, never through a link."""
        try:
            fd = os.open(self._checked_root() / name, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise DestinationError(
                f"no backup {name} in {self.root}", "see `devkit db.list-remote`"
            ) from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise DestinationError(
                    f"{self.root / name} is a link, not a backup: refused",
                    "remove the link; backups there are regular files",
                ) from None
            raise _failed(exc, f"reading {name}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise DestinationError(
                f"{self.root / name} is not a regular file: refused", "remove it"
            )
        return fd

    def upload(self, path: Path) -> str:
        from devkit.backup.reader import verify

        check_name(path.name)
        verify(path)  # never upload a damaged file
        root = self._checked_root()
        digest = sha256_of(path)
        try:
            _write_new(root, f"{path.name}.sha256", f"{digest}  {path.name}\n".encode())
            with path.open("rb") as source:
                _write_new(root, path.name, source)
        except OSError as exc:
            raise _failed(exc, f"writing {path.name}") from None
        if (root / path.name).stat().st_size != path.stat().st_size:
            raise DestinationError(f"{root / path.name}: not the whole file", "upload again")
        return str(root / path.name)

    def list(self) -> list[StoredBackup]:
        found = []
        try:
            entries = list(os.scandir(self._checked_root()))
        except OSError as exc:
            raise _failed(exc, "listing") from None
        for entry in entries:
            if NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                info = entry.stat(follow_symlinks=False)
                modified = datetime.fromtimestamp(info.st_mtime, UTC)
                found.append(StoredBackup(entry.name, info.st_size, modified))
        return newest_first(found)

    def _fetch(self, name: str, out: BinaryIO) -> str:
        with os.fdopen(self._open(name), "rb") as source:
            shutil.copyfileobj(source, out, 1 << 20)
        try:
            with os.fdopen(self._open(f"{name}.sha256"), "rb") as recorded:
                return recorded.read(200).decode("ascii", "replace").split()[0]
        except (DestinationError, IndexError):
            return ""  # copied there by hand: the file's own checksum is verified still

    def delete(self, name: str) -> None:
        root = self._checked_root()
        for entry in (check_name(name), f"{name}.sha256"):
            try:
                if not stat.S_ISLNK(os.lstat(root / entry).st_mode):
                    (root / entry).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise _failed(exc, f"deleting {entry}") from None


def _write_new(root: Path, name: str, content) -> None:
    """NAME in ROOT with CONTENT (bytes or a file), written to a private partial file (O_EXCL,
    no link followed), fsynced, then renamed over NAME."""
    partial = root / f".{name}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            if isinstance(content, bytes):
                out.write(content)
            else:
                shutil.copyfileobj(content, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, root / name)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _failed(exc: OSError, action: str) -> DestinationError:
    return DestinationError(
        f"the backup destination failed {action}: {exc.strerror or exc}",
        "check the directory (mounted? writable by you?) or set devkit.backup_destination",
    )
