"""The Redis side of snapshots (devkit/snapshots.py, devkit/branches.py): Redis's keys copied
key by key while the server runs (devkit/redis_keys.py) into the kit's state directory, one file
per snapshot named from the snapshot's name (snapshot_catalog.redis_copy; no path is ever read
from the database), put back, and removed with their snapshot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from devkit.envfile import Stack
from devkit.errors import DevkitError
from devkit.paths import remove_kit_file
from devkit.snapshot_catalog import SnapshotError, redis_copy, redis_dir

if TYPE_CHECKING:
    from devkit.snapshot_catalog import Snapshot

T = TypeVar("T")


def save_redis(stack: Stack, name: str) -> str:
    """Redis's keys as redis_copy (0600, devkit/redis_keys.py); "" when Redis does not answer."""
    import os

    from devkit import redis_keys

    directory = redis_dir(stack)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    path = redis_copy(stack, name)
    try:
        redis_keys.save(stack, path)
    except redis_keys.RedisKeysError:  # Redis does not answer: the snapshot says it has no copy
        return ""
    return str(path)


def load_redis(stack: Stack, path: str, previous: str) -> None:
    """Put the snapshot's keys back; when that fails half-way, the keys Redis had (PREVIOUS)."""
    from devkit import redis_keys

    try:
        redis_keys.load(stack, Path(path))
    except DevkitError as exc:
        if previous:
            redis_keys.load(stack, Path(previous))
        raise SnapshotError(
            f"the database was restored, but Redis's keys were not: {exc.cause}"
            + ("; Redis has the keys it had" if previous else ""),
            exc.hint,
        ) from None


def beside_redis_copy(stack: Stack, name: str, work: Callable[[], T]) -> tuple[T, str]:
    """WORK() (a database's file-level copy) run while Redis's keys are saved as snapshot NAME's
    copy (save_redis) on another thread: the two copies overlap instead of adding up. WORK's
    result and the Redis copy's path ("" when Redis does not answer); when either fails, that
    Redis copy is removed and the error raised."""
    from concurrent.futures import ThreadPoolExecutor, wait

    with ThreadPoolExecutor(max_workers=1) as pool:
        saving = pool.submit(save_redis, stack, name)
        try:
            result = work()
        except BaseException:
            wait([saving])
            forget_redis(stack, name)
            raise
        try:
            return result, saving.result()
        except BaseException:
            forget_redis(stack, name)
            raise


def forget_redis(stack: Stack, name: str) -> None:
    remove_kit_file(redis_copy(stack, name), redis_dir(stack))


def forget_redis_copies(stack: Stack, gone: list[Snapshot]) -> None:
    """The Redis copies of snapshots whose database is gone (a reset deleted the volume)."""
    for snapshot in gone:
        forget_redis(stack, snapshot.name)
