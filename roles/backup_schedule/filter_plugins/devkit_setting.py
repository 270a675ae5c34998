"""The kit's settings rules for role variables that stand for a setting (the settings table's
role_vars): each checked by the kit's own rule (devkit.settings.model), never a copy in YAML."""

from devkit.settings.model import setting_problem
from devkit.settings.table import DEFAULTS, DESTINATION, SETTINGS


def backup_status_file(name):
    """Where the job leaves its last run's result (devkit/backup/last_run.py)."""
    from devkit.backup.last_run import status_file

    return str(status_file(name))


def backup_log_file(name):
    """Where the job's output goes by default (devkit/backup/last_run.py)."""
    from devkit.backup.last_run import log_file

    return str(log_file(name))


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


def destination_problem(destination):
    """ "" when the destination settings (by name: backup_destination, s3_*) name one, else why
    not (devkit.destinations' rule, the settings' own rules first)."""
    from devkit.destinations import destination_of
    from devkit.errors import DevkitError

    try:
        destination_of(_destination_settings(destination))
    except DevkitError as exc:
        return f"{exc.cause} ({exc.hint})"
    return ""


def destination_env(destination):
    """The destination settings as the kit reads them from the environment (INVOKE_DEVKIT_*)."""
    settings = _destination_settings(destination)
    return {f"INVOKE_DEVKIT_{name.upper()}": str(settings[name]) for name in DESTINATION}


def _destination_settings(destination):
    unknown = sorted(set(destination) - set(DESTINATION))
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)}: not a destination setting ({', '.join(DESTINATION)})"
        )
    return {**DEFAULTS, **destination}


class FilterModule:
    def filters(self):
        return {
            "role_settings": role_settings,
            "setting_problem": role_setting_problem,
            "destination_problem": destination_problem,
            "destination_env": destination_env,
            "backup_status_file": backup_status_file,
            "backup_log_file": backup_log_file,
        }
