"""The kit's own state on this machine: which app directory `setup --app-dir` was given last."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devkit.paths import SAMPLE_APP, STATE_FILE


def read_state() -> dict[str, Any]:
    try:
        return json.loads(STATE_FILE.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def record_app_dir(app_dir: Path) -> None:
    STATE_FILE.parent.mkdir(exist_ok=True)
    STATE_FILE.write_text(json.dumps({**read_state(), "app_dir": str(app_dir)}, indent=2) + "\n")


def resolve_app_dir(app_dir: str) -> Path:
    """The app directory: the setting when given, then the one setup recorded, then the kit's
    sample app."""
    if app_dir:
        return Path(app_dir).expanduser().resolve()
    recorded = read_state().get("app_dir")
    return Path(recorded) if recorded else SAMPLE_APP
