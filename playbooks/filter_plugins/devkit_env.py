"""site.yml's filters over the kit's own rules: a server's settings from its inventory variables
(devkit_<setting>, the settings table's server settings), checked by devkit.settings' and
devkit.passwords' rules, and its .env.local values computed on the controller by the code that
`devkit setup` uses (devkit.envfile.env_values)."""

from devkit import memory
from devkit.envfile import env_values
from devkit.errors import SettingsError
from devkit.passwords import password_problem
from devkit.pull.source import server_key_path
from devkit.settings.model import load_settings, settings_problems
from devkit.settings.table import PER_APP, SERVER_DEFAULTS, SERVER_SETTINGS


def devkit_settings(host_vars):
    """A host's settings from its variables (`hostvars[inventory_hostname]`): devkit_<name> for
    each server setting, the kit's server default where the inventory does not set one (app_dir's
    is empty: inventory_problems asks for a server's own)."""
    return {
        name: host_vars.get(f"devkit_{name}", SERVER_DEFAULTS[name]) for name in SERVER_SETTINGS
    }


def server_passwords(host_vars):
    """A server's passwords from its inventory, by their .env.local key: each service's
    devkit_<service>_password, else the vault's vault_devkit_<service>_password (so a new
    service's needs one line in the vault and none in main.yml); "" for one that is not set."""
    from devkit.services import SERVICES

    return {
        s.password_key: str(
            host_vars.get(s.server_password_var)
            or host_vars.get(f"vault_{s.server_password_var}")
            or ""
        )
        for s in SERVICES.values()
    }


def server_env(settings, passwords, memory_mb=0):
    """`settings`: the kit's settings (project_name, app_dir, bind_address, ports, user, db);
    `passwords`: server_passwords; `memory_mb`: the server's memory (its /proc/meminfo, read by
    site.yml's check), what the services are sized for unless devkit_memory_mb says."""
    try:
        validated = load_settings(settings)
    except SettingsError as exc:
        # AnsibleFilterError without importing Ansible here: a ValueError becomes a task failure.
        raise ValueError(f"{exc.cause} ({exc.hint})") from None
    values = env_values(validated, passwords, int(memory_mb))
    # The server's own path, as written: not resolved against the controller's filesystem.
    values["DEVKIT_APP_DIR"] = str(settings["app_dir"])
    return values


def memory_problems(settings, host, memory_mb):
    """Why a server with MEMORY_MB MiB (its /proc/meminfo) is refused, unless its inventory
    says how much the stack may plan for (devkit_memory_mb): devkit/memory.py's floor."""
    return memory.problems(host, memory.planned_mb(settings.get("memory_mb"), memory_mb))


def memory_warning(settings, host, memory_mb):
    """The line for a server whose memory fits, tightly (devkit/memory.py's rule)."""
    return memory.warning(host, memory.planned_mb(settings.get("memory_mb"), memory_mb))


def inventory_problems(settings, passwords):
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
    from devkit.services import SERVICES

    for service in SERVICES.values():
        if why := password_problem(passwords.get(service.password_key) or ""):
            problems.append(
                f"{service.server_password_var} {why} (it must come from the inventory's vault)"
            )
    return problems


def destination_settings(settings):
    """The settings naming a server's backup destination (devkit/destinations), by name."""
    from devkit.settings.table import DESTINATION

    return {name: settings[name] for name in DESTINATION}


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
            "server_passwords": server_passwords,
            "password_problem": password_problem,
            "inventory_problems": inventory_problems,
            "network_vars": network_vars,
            "destination_settings": destination_settings,
            "build_proxy": build_proxy,
            "pull_key_path": server_key_path,
            "memory_problems": memory_problems,
            "memory_warning": memory_warning,
            "meminfo_mb": memory.meminfo_mb,
        }
