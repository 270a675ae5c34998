"""The kit's settings: one definition, validated once, shared by Compose, Ansible and the tasks.

Defaults live in devkit/defaults.py (plain data, so tasks.py hands them to Invoke without
importing pydantic). Users override them in invoke.yaml (`devkit: {postgres_port: 5433}`) or through the
environment (`INVOKE_DEVKIT_POSTGRES_PORT=5433`).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from devkit.defaults import DEFAULTS
from devkit.errors import SettingsError
from devkit.paths import KIT_ROOT, STATE_FILE

_IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    project_name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    app_dir: str
    bind_address: str
    postgres_port: int = Field(ge=1, le=65535)
    postgres_user: str = Field(pattern=_IDENTIFIER)
    postgres_db: str = Field(pattern=_IDENTIFIER)
    redis_port: int = Field(ge=1, le=65535)
    images_source: Literal["auto", "registry", "local"]
    ready_timeout: float = Field(gt=0, le=3600)

    @field_validator("bind_address")
    @classmethod
    def _ip_address(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> Settings:
        if self.postgres_port == self.redis_port:
            raise ValueError("postgres_port and redis_port must differ")
        return self

    @property
    def host(self) -> str:
        """The address clients connect to: loopback when the ports are open on every address."""
        return (
            "127.0.0.1"
            if ipaddress.ip_address(self.bind_address).is_unspecified
            else self.bind_address
        )

    def resolved_app_dir(self) -> Path:
        """The app directory: settings first, then the one `setup --app-dir` recorded, then the kit."""
        if self.app_dir:
            return Path(self.app_dir).expanduser().resolve()
        recorded = read_state().get("app_dir")
        return Path(recorded) if recorded else KIT_ROOT


def load_settings(values: Mapping[str, Any]) -> Settings:
    """Validate the `devkit` section of Invoke's config (defaults merged with overrides)."""
    merged = {**DEFAULTS, **dict(values)}
    try:
        return Settings(**merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not first["loc"]:
            raise SettingsError(f"bad settings: {message}", "fix them in invoke.yaml") from None
        field = str(first["loc"][0])
        raise SettingsError(
            f"bad setting {field}={merged.get(field)!r}: {message}",
            f"fix devkit.{field} in invoke.yaml or INVOKE_DEVKIT_{field.upper()}",
        ) from None


def read_state() -> dict[str, Any]:
    try:
        return json.loads(STATE_FILE.read_text())
    except (FileNotFoundError, ValueError):
        return {}


def record_app_dir(app_dir: Path) -> None:
    STATE_FILE.parent.mkdir(exist_ok=True)
    STATE_FILE.write_text(json.dumps({**read_state(), "app_dir": str(app_dir)}, indent=2) + "\n")
