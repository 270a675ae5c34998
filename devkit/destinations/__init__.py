"""Backup destinations behind one interface (base.Destination): S3 (s3.py) and a directory, a
NAS mount say (directory.py). `destination_of` picks the one the settings name:
`backup_destination` is `s3`, or an absolute directory; empty, S3 when `s3_bucket` is set (as
before destinations existed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devkit.destinations.base import Destination, DestinationError, check_name
from devkit.errors import SettingsError

__all__ = ["Destination", "DestinationError", "check_name", "destination_of"]


def destination_of(config: Mapping[str, Any]) -> Destination:
    """The destination the kit's settings (Invoke's `devkit` config) name, validated
    (SettingsError naming a bad or missing one)."""
    from devkit.settings.model import load_settings

    settings = load_settings(config)
    chosen = settings.backup_destination or ("s3" if settings.s3_bucket else "")
    if chosen == "s3":
        from devkit.destinations.s3 import S3

        if not settings.s3_bucket:
            raise SettingsError(
                "no S3 bucket is set",
                "set devkit.s3_bucket in invoke.yaml or INVOKE_DEVKIT_S3_BUCKET",
            )
        return S3(
            settings.s3_bucket, settings.s3_prefix, settings.s3_endpoint_url, settings.s3_region
        )
    if chosen:
        from devkit.destinations.directory import Directory

        return Directory(Path(chosen))
    raise SettingsError(
        "no S3 bucket is set (nor another backup destination)",
        "set devkit.s3_bucket in invoke.yaml or INVOKE_DEVKIT_S3_BUCKET, or "
        "devkit.backup_destination to a directory (a NAS mount)",
    )
