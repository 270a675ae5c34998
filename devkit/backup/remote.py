"""Backups in S3 or an S3-compatible store (boto3): upload, list, download.

A backup is checked (`verify`) before it is uploaded; the object carries the SHA-256 of the file
in its metadata, and a download is checked against it, and verified, before it takes a backup's
name on disk.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from devkit.backup.fileformat import CorruptBackup
from devkit.backup.reader import verify
from devkit.errors import DevkitError, SettingsError

NAME = re.compile(r"^backup_\d{8}_\d{6}(_\d+)?\.backup\.gz$")


class RemoteError(DevkitError):
    """The object store refused or failed a request."""


@dataclass(frozen=True)
class RemoteBackup:
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


@dataclass(frozen=True)
class Bucket:
    """Where backups go in the store: the S3 settings, validated."""

    name: str
    prefix: str
    endpoint_url: str
    region: str

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url or None, region_name=self.region or None
        )


def bucket_of(config: Mapping[str, Any]) -> Bucket:
    """The S3 settings of Invoke's `devkit` config, validated (SettingsError naming a bad one)."""
    from devkit.settings.model import load_settings

    settings = load_settings(config)
    if not settings.s3_bucket:
        raise SettingsError(
            "no S3 bucket is set", "set devkit.s3_bucket in invoke.yaml or INVOKE_DEVKIT_S3_BUCKET"
        )
    return Bucket(
        settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url, settings.s3_region
    )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _failed(exc: Exception, action: str) -> RemoteError:
    return RemoteError(
        f"S3 {action} failed: {exc}",
        "check the bucket, credentials (AWS_*) and devkit.s3_endpoint_url",
    )


def upload(bucket: Bucket, path: Path) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    check_name(path.name)
    verify(path)  # never upload a damaged file
    client, key = bucket.client(), bucket.key(path.name)
    try:
        client.upload_file(
            str(path), bucket.name, key, ExtraArgs={"Metadata": {"sha256": _sha256(path)}}
        )
        head = client.head_object(Bucket=bucket.name, Key=key)
    except (BotoCoreError, ClientError) as exc:
        raise _failed(exc, "upload") from None
    if head["ContentLength"] != path.stat().st_size:
        raise RemoteError(
            f"{key}: the store holds {head['ContentLength']} bytes of {path.stat().st_size}",
            "upload again",
        )
    return f"s3://{bucket.name}/{key}"


def list_remote(bucket: Bucket) -> list[RemoteBackup]:
    """Newest first."""
    from botocore.exceptions import BotoCoreError, ClientError

    client, prefix = bucket.client(), bucket.prefix
    found = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket.name, Prefix=prefix
        ):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(prefix) :]
                if NAME.fullmatch(name):
                    found.append(RemoteBackup(name, obj["Size"], obj["LastModified"]))
    except (BotoCoreError, ClientError) as exc:
        raise _failed(exc, "list") from None
    return sorted(found, key=lambda b: (b.modified, b.name), reverse=True)


def download(bucket: Bucket, name: str, directory: Path) -> Path:
    from botocore.exceptions import BotoCoreError, ClientError

    from devkit.app_repo import ignore_directory

    check_name(name)
    directory.mkdir(parents=True, exist_ok=True)
    ignore_directory(directory)  # backups hold the app's data: never in its git repository
    client, key = bucket.client(), bucket.key(name)
    target = directory / name
    partial = directory / f".{name}.partial"
    # The download is written into a file that is the kit's own (O_EXCL, never through a link)
    # and private (0600) from its first byte.
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise RemoteError(
            f"{partial} exists: another download of {name} is under way, or one was cut off",
            f"wait for it, or remove {partial}",
        ) from None
    try:
        head = client.head_object(Bucket=bucket.name, Key=key)
        with os.fdopen(fd, "wb") as out:
            client.download_fileobj(bucket.name, key, out)
            out.flush()
            os.fsync(out.fileno())
    except (BotoCoreError, ClientError) as exc:
        partial.unlink(missing_ok=True)
        raise _failed(exc, f"download of {key}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    try:
        expected = head.get("Metadata", {}).get("sha256")
        if expected and _sha256(partial) != expected:
            raise CorruptBackup(
                f"{key} does not match the SHA-256 recorded at upload",
                "the object was changed or damaged in the store",
            )
        verify(partial)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, target)
    return target
