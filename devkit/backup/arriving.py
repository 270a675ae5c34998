"""A backup file still arriving (db.pull's copy, written by ssh while the restore reads it):
readers of it wait at its end until its writer is done, instead of taking that end for the
file's (devkit/pull/run.py, devkit/backup/reader.py)."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

# Files another process is still writing (db.pull's copy arriving over SSH), each with the
# question "will more come?": a reader waits at their end instead of taking it for the file's.
_FOLLOWED: dict[Path, Callable[[], bool]] = {}


@contextlib.contextmanager
def following(path: Path, writing: Callable[[], bool]) -> Iterator[None]:
    """While the block runs, a backup reader of PATH waits at its end while WRITING() says more
    is coming (WRITING raises when the writer failed: the reader's caller then fails with it), so
    that a restore loads the file as it arrives. Its checks are the same: the SHA-256 at the end,
    before COMMIT."""
    _FOLLOWED[path] = writing
    try:
        yield
    finally:
        _FOLLOWED.pop(path, None)


class _Following(io.RawIOBase):
    """A file being written, read to its final end (see following)."""

    def __init__(self, path: Path, writing: Callable[[], bool]) -> None:
        self._file = path.open("rb", buffering=0)
        self._writing = writing

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            done = self._file.readinto(buffer)
            if done:
                return done
            if not self._writing():
                return self._file.readinto(buffer) or 0  # what it wrote before it ended
            time.sleep(0.005)

    def close(self) -> None:
        self._file.close()
        super().close()


def open_backup(path: Path):
    """PATH opened for a backup reader: followed to its final end while it is being written."""
    writing = _FOLLOWED.get(path)
    return io.BufferedReader(_Following(path, writing)) if writing else path.open("rb")
