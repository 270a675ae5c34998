"""The kit's settings: `table` (every setting, its default and where it goes; plain data, so
tasks.py and everyday tasks start without pydantic), `model` (their validation), and `setting`,
one setting for a task that needs only it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devkit.settings.table import DEFAULTS, check_known


def setting(config: Mapping[str, Any], name: str) -> Any:
    """Setting NAME from the `devkit` section of Invoke's config, for a task that needs only it:
    its default is taken as it is, any other value is validated with all the settings
    (devkit.settings.model.load_settings, which names a bad one), so the everyday path needs no
    pydantic (~0.1 s of start-up). A key that is no setting is refused either way."""
    values = dict(config)
    check_known(values)
    default = DEFAULTS[name]
    value = values.get(name, default)
    if value == default and type(value) is type(default):
        return value
    from devkit.settings.model import load_settings

    return getattr(load_settings(values), name)
