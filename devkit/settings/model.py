"""The settings' validation: a pydantic model built from devkit.settings.table, plus the rules
between settings. Everyday tasks do not import this module (pydantic costs ~0.14 s of start-up):
they read .env.local, which setup wrote from validated settings, and come here only when the
config no longer matches it (devkit.envfile.load_stack).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from devkit.app import resolve_app_dir
from devkit.errors import SettingsError
from devkit.settings.table import DEFAULTS, SETTINGS, check_known


class _Rules(BaseModel):
    """The rules between settings, and what is derived from them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("bind_address", check_fields=False)
    @classmethod
    def _ip_address(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value

    @field_validator("http_proxy", "https_proxy", "ca_file", check_fields=False)
    @classmethod
    def _network(cls, value: str, info: ValidationInfo) -> str:
        from devkit.network import ca_problem, proxy_problem

        if problem := (ca_problem if info.field_name == "ca_file" else proxy_problem)(value):
            raise ValueError(problem)
        return value

    @field_validator("postgres_user", check_fields=False)
    @classmethod
    def _not_the_admin(cls, value: str) -> str:
        if value == "postgres":
            raise ValueError("postgres is the cluster's admin; the app needs a role of its own")
        return value

    @model_validator(mode="after")
    def _distinct_ports(self) -> _Rules:
        from devkit.services import SERVICES

        chosen = [s.port_setting for s in SERVICES.values() if getattr(self, s.port_setting)]
        for i, name in enumerate(chosen):
            for other in chosen[i + 1 :]:
                if getattr(self, name) == getattr(self, other):
                    raise ValueError(f"{name} and {other} must differ")
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
        return resolve_app_dir(self.app_dir, announce=False)


def _field(name: str) -> tuple[Any, Any]:
    setting = SETTINGS[name]
    if setting.choices:
        return Literal[setting.choices], Field()
    return type(setting.default), Field(**setting.limits)


Settings = create_model("Settings", __base__=_Rules, **{name: _field(name) for name in SETTINGS})


def _validated(values: Mapping[str, Any]) -> tuple[Any, list[tuple[str, Any, str]]]:
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


def load_settings(values: Mapping[str, Any]):
    """Validate the `devkit` section of Invoke's config (defaults merged with overrides)."""
    check_known(dict(values))
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


def setting_problem(name: str, value: Any) -> str:
    """Why `value` is not valid for the setting `name` ("" when it is), by the same rules as
    load_settings: for roles whose variables stand for a setting."""
    return "; ".join(why for field, _, why in settings_problems({name: value}) if field == name)
