"""server_env: a server's .env.local values, computed on the controller by the same code that
`invoke setup` uses (devkit.envfile.env_values), from inventory settings and vault passwords."""

from devkit.envfile import env_values, password_problem
from devkit.errors import SettingsError
from devkit.settings import load_settings


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


class FilterModule:
    def filters(self):
        return {"server_env": server_env, "password_problem": password_problem}
