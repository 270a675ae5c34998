"""server_env: a server's .env.local values, computed on the controller by the same code that
`invoke setup` uses (devkit.envfile.env_values), from inventory settings and vault passwords."""

from devkit.envfile import env_values
from devkit.errors import SettingsError
from devkit.passwords import password_problem
from devkit.settings.model import load_settings, settings_problems


def server_env(settings, postgres_password, redis_password):
    """`settings`: the kit's settings (project_name, app_dir, bind_address, ports, user, db)."""
    try:
        validated = load_settings(settings)
    except SettingsError as exc:
        # AnsibleFilterError without importing Ansible here: a ValueError becomes a task failure.
        raise ValueError(f"{exc.cause} ({exc.hint})") from None
    values = env_values(
        validated, {"PGPASSWORD": postgres_password, "REDIS_PASSWORD": redis_password}
    )
    # The server's own path, as written: not resolved against the controller's filesystem.
    values["DEVKIT_APP_DIR"] = str(settings["app_dir"])
    return values


def inventory_problems(settings, postgres_password, redis_password):
    """What is wrong with one host's inventory values, each naming the inventory variable
    (`devkit_<setting>`): the settings by devkit.settings' rules, the passwords by
    devkit.envfile's. [] when nothing is."""
    problems = [
        f"devkit_{name}={value!r}: {why}" if name else why
        for name, value, why in settings_problems(settings)
    ]
    for name, password in (
        ("devkit_postgres_password", postgres_password),
        ("devkit_redis_password", redis_password),
    ):
        if why := password_problem(password or ""):
            problems.append(f"{name} {why} (it must come from the inventory's vault)")
    return problems


class FilterModule:
    def filters(self):
        return {
            "server_env": server_env,
            "password_problem": password_problem,
            "inventory_problems": inventory_problems,
        }
