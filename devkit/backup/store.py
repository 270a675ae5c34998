"""Local backups: where they are, listing, retention."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.state import resolve_app_dir

PATTERNS = ("backup_*.backup.gz", "backup_*.dump")
PARTIAL = ".backup_*.partial"


def backup_dir(config: Mapping[str, Any]) -> Path:
    configured = str(config.get("backup_dir") or "")
    app_dir = resolve_app_dir(str(config.get("app_dir") or ""))
    return (app_dir / configured if configured else app_dir / "backups").resolve()


def retention_days(config: Mapping[str, Any], flag: int | None) -> int:
    return int(flag or os.environ.get("BACKUP_RETENTION_DAYS") or config["backup_retention_days"])


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


def plan_prune(directory: Path, days: int, is_intact, now: float | None = None) -> PrunePlan:
    """Backups older than `days` and leftover partial files; never the newest intact backup."""
    now = now or time.time()
    cutoff = now - days * 86400
    backups = list_backups(directory)
    newest_intact = next((b.path for b in backups if is_intact(b.path)), None)
    old = [b.path for b in backups if b.mtime < cutoff and b.path != newest_intact]
    partial = [p for p in directory.glob(PARTIAL) if p.stat().st_mtime < now - 3600]
    return PrunePlan(old + partial, newest_intact)
