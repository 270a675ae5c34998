"""site.yml's filters over the kit's own rules: a server's settings from its inventory variables
(devkit_<setting>, the settings table's server settings), checked by devkit.settings' and
devkit.passwords' rules, and its .env.local values computed on the controller by the code that
`devkit setup` uses (devkit.envfile.env_values)."""

from devkit.envfile import env_values
from devkit.errors import SettingsError
from devkit.passwords import password_problem
from devkit.settings.model import load_settings, settings_problems
from devkit.settings.table import PER_APP, SERVER_DEFAULTS, SERVER_SETTINGS


def devkit_settings(host_vars):
    """A host's settings from its variables (`hostvars[inventory_hostname]`): devkit_<name> for
    each server setting, the kit's server default where the inventory does not set one (app_dir's
    is empty: inventory_problems asks for a server's own)."""
    return {
        name: host_vars.get(f"devkit_{name}", SERVER_DEFAULTS[name]) for name in SERVER_SETTINGS
    }


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
    for name in PER_APP:
        # A workstation picks these per app ("" or 0); a server's are fixed.
        if name in settings and not settings[name]:
            problems.append(
                f"devkit_{name}={settings[name]!r}: a server's must be set "
                f"(default {SERVER_DEFAULTS[name]!r})"
            )
    if not str(settings.get("app_dir", "")).startswith("/"):
        problems.append(
            f"devkit_app_dir={settings.get('app_dir', '')!r}: the app's directory on the server "
            "must be an absolute path"
        )
    for name, password in (
        ("devkit_postgres_password", postgres_password),
        ("devkit_redis_password", redis_password),
    ):
        if why := password_problem(password or ""):
            problems.append(f"{name} {why} (it must come from the inventory's vault)")
    return problems


def network_vars(settings):
    """A server's `network` role variables and play environment, from its settings (the
    inventory's devkit_http_proxy, devkit_https_proxy, devkit_no_proxy, devkit_ca_file)."""
    from devkit.network import Network

    return Network(
        settings.get("http_proxy", ""),
        settings.get("https_proxy", ""),
        settings.get("no_proxy", ""),
        settings.get("ca_file", ""),
    ).role_vars()


def build_proxy(environment):
    """The proxy variables of a play's environment, as build arguments."""
    names = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")
    return {name: value for name, value in (environment or {}).items() if name in names}


class FilterModule:
    def filters(self):
        return {
            "devkit_settings": devkit_settings,
            "server_env": server_env,
            "password_problem": password_problem,
            "inventory_problems": inventory_problems,
            "network_vars": network_vars,
            "build_proxy": build_proxy,
        }
