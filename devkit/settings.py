"""The kit's settings: one definition, validated where they are applied (setup, images.build).

Defaults live in devkit/defaults.py (plain data, so tasks.py hands them to Invoke without
importing pydantic). Users override them in invoke.yaml (`devkit: {postgres_port: 5433}`) or through the
environment (`INVOKE_DEVKIT_POSTGRES_PORT=5433`). Everyday tasks do not import this module
(pydantic costs ~0.14 s of start-up): they read .env.local, which setup wrote from validated
settings, and come here only when the config no longer matches it (devkit.envfile.load_stack).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from devkit.defaults import DEFAULTS
from devkit.errors import SettingsError
from devkit.state import resolve_app_dir
from devkit.vscode import DISTRO_PATTERN

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
    backup_dir: str
    backup_retention_days: int = Field(ge=1, le=36500)
    backup_max_line_mb: int = Field(ge=1, le=65536)
    backup_max_document_mb: int = Field(ge=1, le=65536)
    s3_bucket: str
    s3_prefix: str
    s3_endpoint_url: str
    s3_region: str
    vscode_host: Literal["linux", "windows"]
    vscode_wsl_distro: str = Field(pattern=DISTRO_PATTERN)
    vscode_auto_start: bool

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

    @field_validator("postgres_user")
    @classmethod
    def _not_the_admin(cls, value: str) -> str:
        if value == "postgres":
            raise ValueError("postgres is the cluster's admin; the app needs a role of its own")
        return value

    @property
    def host(self) -> str:
        """The address clients connect to: loopback when the ports are open on every address."""
        return (
            "127.0.0.1"
            if ipaddress.ip_address(self.bind_address).is_unspecified
            else self.bind_address
        )

    def resolved_app_dir(self) -> Path:
        return resolve_app_dir(self.app_dir)


def _validated(values: Mapping[str, Any]) -> tuple[Settings | None, list[tuple[str, Any, str]]]:
    """`values` merged with the defaults, validated once: the settings, or every problem as
    (name, value, why), the whole-settings rules (two equal ports) under the name ""."""
    merged = {**DEFAULTS, **dict(values)}
    try:
        return Settings(**merged), []
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            problems.append((name, merged.get(name), error["msg"].removeprefix("Value error, ")))
        return None, problems


def settings_problems(values: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """Every invalid setting of `values` (merged with the defaults), as (name, value, why)."""
    return _validated(values)[1]


def load_settings(values: Mapping[str, Any]) -> Settings:
    """Validate the `devkit` section of Invoke's config (defaults merged with overrides)."""
    settings, problems = _validated(values)
    if settings is not None:
        return settings
    field, value, message = problems[0]
    if not field:
        raise SettingsError(f"bad settings: {message}", "fix them in invoke.yaml")
    raise SettingsError(
        f"bad setting {field}={value!r}: {message}",
        f"fix devkit.{field} in invoke.yaml or INVOKE_DEVKIT_{field.upper()}",
    )
