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


def destination_of(config: Mapping[str, Any], from_host: str | None = None) -> Destination:
    """The destination the kit's settings (Invoke's `devkit` config) name, validated
    (SettingsError naming a bad or missing one). FROM_HOST: another server's backups, on a
    server whose S3 prefix names itself (an inventory's `backups/{{ inventory_hostname }}/`):
    that prefix with the other host's name."""
    from devkit.settings.model import load_settings

    settings = load_settings(config)
    if from_host:
        settings = settings.model_copy(update={"s3_prefix": _hosts_prefix(settings, from_host)})
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


def _hosts_prefix(settings, host: str) -> str:
    from devkit.paths import server_name

    own = server_name()
    parts = settings.s3_prefix.split("/")
    if not own or own not in parts or (settings.backup_destination not in ("", "s3")):
        raise SettingsError(
            f"--from-host {host}: this kit's S3 prefix ({settings.s3_prefix!r}) does not name "
            f"its own server{f' ({own})' if own else ''}, so another host's cannot be derived",
            "set the other host's prefix instead: INVOKE_DEVKIT_S3_PREFIX=backups/HOST/",
        )
    return "/".join(host if part == own else part for part in parts)
