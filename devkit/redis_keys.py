"""Redis's data copied key by key while the server runs (for snapshots: devkit/snapshots.py), not
as an RDB file: putting an RDB file back needs the server stopped and started (redis_rdb.restore,
about a second), while a copy of each key (`DUMP` and its time to live) goes back with `RESTORE`
in one `MULTI` transaction in milliseconds, the server running throughout.

The file: gzip'd JSON lines, one per key, `{"db": 0, "key": base64, "ttl": ms or 0, "value":
base64}` (values are DUMP's payloads, which only the same Redis version reads); mode 0600,
written whole or not at all. Every logical database with keys is copied (`INFO keyspace`).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from pathlib import Path

from devkit.envfile import Stack
from devkit.errors import DevkitError
from devkit.paths import remove_kit_file

BATCH = 1000  # keys per pipelined round trip


class RedisKeysError(DevkitError):
    """Redis's keys could not be copied or put back; the data Redis has is unchanged."""


class KeysFileError(DevkitError):
    """The copy's file cannot be written where the kit writes it."""


def _client(stack: Stack, db: int):
    import redis

    return redis.Redis(
        host=stack.host, port=stack.redis_port, password=stack.redis_password, db=db,
        socket_connect_timeout=5, socket_timeout=60,
    )  # fmt: skip


def _databases(stack: Stack) -> list[int]:
    keyspace = _client(stack, 0).info("keyspace")
    return sorted(int(name[2:]) for name in keyspace if name.startswith("db"))


def save(stack: Stack, path: Path) -> int:
    """Every key of every database into PATH (see the module); the number of keys."""
    import redis

    partial = path.with_name(f".{path.name}.partial")
    remove_kit_file(partial, path.parent)  # one a killed command left
    try:
        # Never through a link someone left in its place, nor into a file opened elsewhere.
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise KeysFileError(
            f"cannot write {partial}: {exc.strerror} (something not written by the kit is there)",
            f"look at it and remove it: ls -l {partial}",
        ) from None
    count = 0
    try:
        with os.fdopen(fd, "wb") as raw, gzip.open(raw, "wt", compresslevel=1) as out:
            for db in _databases(stack):
                client = _client(stack, db)
                keys = list(client.scan_iter(count=BATCH))
                for start in range(0, len(keys), BATCH):
                    batch = keys[start : start + BATCH]
                    pipe = client.pipeline(transaction=False)
                    for key in batch:
                        pipe.dump(key)
                        pipe.pttl(key)
                    answers = pipe.execute()
                    for key, value, ttl in zip(batch, answers[::2], answers[1::2], strict=True):
                        if value is None or ttl == -2:  # gone (expired) since the scan
                            continue
                        record = {
                            "db": db,
                            "key": base64.b64encode(key).decode(),
                            "ttl": max(ttl, 0),
                            "value": base64.b64encode(value).decode(),
                        }
                        out.write(json.dumps(record) + "\n")
                        count += 1
            out.flush()
            raw.flush()
            os.fsync(raw.fileno())
        partial.replace(path)
    except redis.RedisError as exc:
        raise RedisKeysError(
            f"redis's keys could not be copied: {exc}", "is the stack up (`devkit up`)?"
        ) from None
    finally:
        remove_kit_file(partial, path.parent)
    return count


def load(stack: Stack, path: Path) -> int:
    """Replace every key of every database with PATH's, in one MULTI transaction (other clients
    see the data before or after, never between); the number of keys. A RESTORE that fails
    inside it (a payload this Redis cannot read) does not undo the others: the caller puts a copy
    taken before back (devkit/snapshots.py)."""
    import redis

    try:
        with gzip.open(path, "rt") as lines:
            records = [json.loads(line) for line in lines]
    except (OSError, ValueError, EOFError) as exc:
        raise RedisKeysError(
            f"{path.name} is not a readable copy of Redis's keys: {exc}", "take another snapshot"
        ) from None
    client = _client(stack, 0)
    pipe = client.pipeline(transaction=True)
    pipe.flushall()
    selected = 0
    for record in records:
        if record["db"] != selected:
            pipe.execute_command("SELECT", record["db"])
            selected = record["db"]
        pipe.restore(
            base64.b64decode(record["key"]), record["ttl"], base64.b64decode(record["value"]),
            replace=True,
        )  # fmt: skip
    if selected:
        pipe.execute_command("SELECT", 0)
    try:
        pipe.execute()
    except redis.RedisError as exc:  # MULTI does not roll back: the keys may be half put back
        raise RedisKeysError(
            f"redis's keys could not be put back: {exc}",
            "is the stack up (`devkit up`)? `devkit doctor` diagnoses",
        ) from None
    return len(records)


def clear(stack: Stack) -> None:
    """Every key of every database removed (FLUSHALL), as a new Redis has none."""
    import redis

    try:
        _client(stack, 0).flushall()
    except redis.RedisError as exc:
        raise RedisKeysError(
            f"redis's keys could not be removed: {exc}",
            "is the stack up (`devkit up`)? `devkit doctor` diagnoses",
        ) from None
