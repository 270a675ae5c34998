"""S3, or an S3-compatible store (MinIO, R2, ...), through boto3. The object carries the file's
SHA-256 in its metadata. Credentials, and the region or endpoint when their settings are empty,
come from boto3's usual chain (AWS_* variables, ~/.aws, an instance role)."""

from __future__ import annotations

from dataclasses import dataclass
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
class S3(Destination):
    """Where backups go in the store: the s3_* settings, validated."""

    name: str
    prefix: str
    endpoint_url: str
    region: str

    @property
    def label(self) -> str:
        return f"s3://{self.name}/{self.prefix}"

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url or None, region_name=self.region or None
        )

    def upload(self, path: Path) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        from devkit.backup.reader import verify

        check_name(path.name)
        verify(path)  # never upload a damaged file
        client, key = self.client(), self.key(path.name)
        try:
            client.upload_file(
                str(path), self.name, key, ExtraArgs={"Metadata": {"sha256": sha256_of(path)}}
            )
            head = client.head_object(Bucket=self.name, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise _failed(exc, "upload") from None
        if head["ContentLength"] != path.stat().st_size:
            raise DestinationError(
                f"{key}: the store holds {head['ContentLength']} bytes of {path.stat().st_size}",
                "upload again",
            )
        return f"s3://{self.name}/{key}"

    def list(self) -> list[StoredBackup]:
        from botocore.exceptions import BotoCoreError, ClientError

        client, prefix = self.client(), self.prefix
        found = []
        try:
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.name, Prefix=prefix
            ):
                for obj in page.get("Contents", []):
                    name = obj["Key"][len(prefix) :]
                    if NAME.fullmatch(name):
                        found.append(StoredBackup(name, obj["Size"], obj["LastModified"]))
        except (BotoCoreError, ClientError) as exc:
            raise _failed(exc, "list") from None
        return newest_first(found)

    def _fetch(self, name: str, out: BinaryIO) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        client, key = self.client(), self.key(name)
        try:
            head = client.head_object(Bucket=self.name, Key=key)
            client.download_fileobj(self.name, key, out)
        except (BotoCoreError, ClientError) as exc:
            raise _failed(exc, f"download of {key}") from None
        return head.get("Metadata", {}).get("sha256", "")

    def delete(self, name: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client().delete_object(Bucket=self.name, Key=self.key(check_name(name)))
        except (BotoCoreError, ClientError) as exc:
            raise _failed(exc, f"delete of {self.key(name)}") from None


def _failed(exc: Exception, action: str) -> DestinationError:
    return DestinationError(
        f"S3 {action} failed: {exc}",
        "check the bucket, credentials (AWS_*) and devkit.s3_endpoint_url",
    )
