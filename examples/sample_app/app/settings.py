"""The app's database URL: the environment first, then .env.local beside the app (written by
`invoke setup`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent.parent


def env_local(path: Path = APP_DIR / ".env.local") -> dict[str, str]:
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                values[key.strip()] = value.strip().strip("'\"")
    return values


def database_url() -> str:
    """SQLAlchemy URL for synchronous use (Alembic, scripts), through psycopg2."""
    url = os.environ.get("DATABASE_URL_SYNC") or env_local().get("DATABASE_URL_SYNC")
    if not url:
        raise RuntimeError(
            f"no DATABASE_URL_SYNC in the environment or {APP_DIR / '.env.local'}: run `invoke setup`"
        )
    return re.sub(r"^postgres(ql)?(\+\w+)?://", "postgresql+psycopg2://", url)
