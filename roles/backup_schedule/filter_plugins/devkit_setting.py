"""The kit's settings rules for role variables that stand for a setting (the settings table's
role_vars): each checked by the kit's own rule (devkit.settings.model), never a copy in YAML."""

from devkit.settings.model import setting_problem
from devkit.settings.table import SETTINGS


def role_settings(prefix):
    """{role variable: setting} for the role variables starting with `prefix`."""
    return {
        var: name
        for name, setting in SETTINGS.items()
        for var in setting.role_vars
        if var.startswith(prefix)
    }


def role_setting_problem(value, name):
    return setting_problem(name, value)


class FilterModule:
    def filters(self):
        return {"role_settings": role_settings, "setting_problem": role_setting_problem}
