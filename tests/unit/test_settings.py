import subprocess
from pathlib import Path

import pytest

from devkit.errors import SettingsError
from devkit.settings.model import load_settings
from devkit.settings.table import DEFAULTS, SERVER_DEFAULTS, SETTINGS

pytestmark = pytest.mark.unit


def _plugin(path: str):
    """A filter plugin of the kit's playbooks or roles, loaded as Ansible loads it."""
    import importlib.util

    from devkit.paths import KIT_ROOT

    spec = importlib.util.spec_from_file_location(Path(path).stem, KIT_ROOT / path)
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    return plugin


def test_defaults_are_valid_and_loopback():
    settings = load_settings(DEFAULTS)
    assert settings.bind_address == "127.0.0.1"
    # Picked per app at its first setup (devkit.stacks), then kept in its .env.local.
    assert (settings.project_name, settings.postgres_port, settings.redis_port) == ("", 0, 0)


def test_environment_strings_are_coerced():
    assert load_settings({"postgres_port": "5433"}).postgres_port == 5433


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("postgres_port", 70000, "postgres_port=70000"),
        ("redis_port", -1, "redis_port=-1"),
        ("bind_address", "localhost-ish", "bind_address='localhost-ish'"),
        ("postgres_user", "Robert'); DROP", "postgres_user="),
        ("project_name", "Bad Name", "project_name="),
        ("images_source", "ftp", "images_source='ftp'"),
        ("postgres_user", "postgres", "the cluster's admin"),
    ],
)
def test_bad_values_name_the_setting_and_the_fix(key, value, fragment):
    with pytest.raises(SettingsError) as caught:
        load_settings({key: value})
    assert fragment in caught.value.cause
    assert f"INVOKE_DEVKIT_{key.upper()}" in caught.value.hint
    assert caught.value.exit_code == 2


def test_unknown_setting_is_refused():
    with pytest.raises(SettingsError, match="postgres_prot"):
        load_settings({"postgres_prot": 5433})


def test_ports_must_differ():
    with pytest.raises(SettingsError, match="must differ"):
        load_settings({"postgres_port": 6000, "redis_port": 6000})


def test_clients_use_loopback_when_ports_open_everywhere():
    assert load_settings({"bind_address": "0.0.0.0"}).host == "127.0.0.1"
    assert load_settings({"bind_address": "192.0.2.10"}).host == "192.0.2.10"


def test_each_bad_inventory_value_is_named_by_its_variable():
    """site.yml's first play: every problem of a host's settings, as inventory variables."""
    plugin = _plugin("playbooks/filter_plugins/devkit_env.py")
    good = "x" * 24
    settings = {"project_name": "app", "app_dir": "/srv/app", "postgres_port": 99999}
    problems = plugin.inventory_problems(settings, _passwords(plugin, good, "short"))
    assert problems[0].startswith("devkit_postgres_port=99999: ")
    assert problems[1] == (
        "devkit_redis_password is shorter than 16 characters (it must come from the inventory's vault)"
    )
    assert (
        plugin.inventory_problems(
            {"project_name": "app", "app_dir": "/srv"}, _passwords(plugin, good, good)
        )
        == []
    )
    assert (
        "holds a character"
        in plugin.inventory_problems({"app_dir": "/srv"}, _passwords(plugin, good + "$HOME", good))[
            0
        ]
    )


def _passwords(plugin, postgres, redis):
    """site.yml's passwords, from the inventory's variables as server_passwords reads them (any
    other service of devkit/services.py gets a good one)."""
    from devkit.services import SERVICES

    given = {s.server_password_var: "z" * 24 for s in SERVICES.values()}
    given |= {"devkit_postgres_password": postgres, "devkit_redis_password": redis}
    return plugin.server_passwords(given)


def _role_files(role):
    import yaml

    from devkit.paths import KIT_ROOT

    defaults = yaml.safe_load((KIT_ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    specs = yaml.safe_load((KIT_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return defaults or {}, specs["argument_specs"]["main"]["options"]


ROLES = ["backup_schedule", "docker", "images", "kit", "stack", "vscode"]


@pytest.mark.parametrize("role", ROLES)
def test_a_roles_defaults_live_in_its_defaults_file_only(role):
    """One value per role variable: argument specs describe and check, defaults/main.yml holds
    the value (was: image tags and other defaults written in both, and disagreeing)."""
    defaults, options = _role_files(role)
    assert [name for name, spec in options.items() if "default" in spec] == []
    assert set(defaults) <= set(options), "every default is a documented argument"


ROLE_VARS = [(name, var) for name, setting in SETTINGS.items() for var in setting.role_vars]


@pytest.mark.parametrize(("setting", "var"), ROLE_VARS, ids=[v for _, v in ROLE_VARS])
def test_role_variables_standing_for_a_setting_agree_with_the_settings_table(setting, var):
    """A role used on its own behaves as the kit: same default, and no value the kit refuses
    among its choices."""
    role = next(r for r in ROLES if var.startswith(f"{r}_") or var == f"{r}_source")
    defaults, options = _role_files(role)
    assert defaults[var] == SERVER_DEFAULTS.get(setting, SETTINGS[setting].default)
    choices = options[var].get("choices")
    if SETTINGS[setting].choices:
        assert choices and set(SETTINGS[setting].choices) <= set(choices)


def test_image_tags_are_written_once():
    """The official and offline image names live in the images role's defaults only."""
    import re

    from devkit.paths import KIT_ROOT

    tracked = subprocess.run(
        ["git", "ls-files", "roles", "compose", "playbooks", "devkit", "inventories"],
        cwd=KIT_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    found = [
        name
        for name in tracked
        if (KIT_ROOT / name).is_file()  # not inventories/ci-arm64's link to ci's group_vars
        and re.search(r"(postgres:16|redis:7)-bookworm", (KIT_ROOT / name).read_text())
    ]
    assert [name for name in found if not name.endswith(".md")] == [
        "roles/images/defaults/main.yml"
    ]


def test_s3_settings_are_validated():
    with pytest.raises(SettingsError, match="s3_endpoint_url"):
        load_settings({"s3_endpoint_url": "minio:9000"})
    with pytest.raises(SettingsError, match="s3_bucket"):
        load_settings({"s3_bucket": "my bucket/backups"})
    assert load_settings(
        {"s3_bucket": "devkit-backups", "s3_endpoint_url": "http://127.0.0.1:9000"}
    )


def test_the_server_settings_are_read_from_the_inventory_variables():
    """site.yml's devkit_settings filter: devkit_<name> for each server setting, the default
    where the inventory has none."""
    plugin = _plugin("playbooks/filter_plugins/devkit_env.py")
    settings = plugin.devkit_settings(
        {"devkit_app_dir": "/srv/a", "devkit_redis_port": 7000, "x": 1}
    )
    assert settings["app_dir"] == "/srv/a" and settings["redis_port"] == 7000
    assert settings["backup_retention_days"] == DEFAULTS["backup_retention_days"]
    assert "vscode_host" not in settings
    assert plugin.inventory_problems(
        plugin.devkit_settings({}), _passwords(plugin, "x" * 24, "y" * 24)
    ) == ["devkit_app_dir='': the app's directory on the server must be an absolute path"]
    # A workstation picks its project and ports per app; a server keeps the fixed defaults.
    assert (settings["project_name"], settings["postgres_port"]) == ("devkit", 5432)
    fixed = plugin.devkit_settings({"devkit_app_dir": "/srv/a", "devkit_postgres_port": 0})
    assert plugin.inventory_problems(fixed, _passwords(plugin, "x" * 24, "y" * 24)) == [
        "devkit_postgres_port=0: a server's must be set (default 5432)"
    ]
    # A server keeps backup files before a migration or a restore, not snapshots (a snapshot
    # closes the database while it copies), unless its inventory asks for them.
    assert settings["snapshot_keep"] == 0 and DEFAULTS["snapshot_keep"] == 5
    # A server keeps the WAL a standby or pg_basebackup needs; a workstation writes less.
    assert (
        settings["postgres_wal_level"] == "replica" and DEFAULTS["postgres_wal_level"] == "minimal"
    )
    assert plugin.devkit_settings({"devkit_snapshot_keep": 3})["snapshot_keep"] == 3


def test_one_setting_is_read_without_pydantic_unless_it_was_changed():
    """devkit.settings.setting: a task needing one setting (db.snapshot.restore's
    snapshot_keep) takes its default without loading pydantic (~0.1 s of start-up); any other
    value is validated as setup validates it, and a key that is no setting is refused."""
    import sys

    from devkit.settings import setting

    probe = (
        "import sys; from devkit.settings import setting; "
        "assert setting({'postgres_port': 5433}, 'snapshot_keep') == 5; "
        "print('devkit.settings.model' in sys.modules, 'pydantic' in sys.modules)"
    )
    said = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert said.stdout.split() == ["False", "False"], said.stderr
    assert setting({"snapshot_keep": "3"}, "snapshot_keep") == 3  # as the environment gives it
    assert setting({"snapshot_keep": 0}, "snapshot_keep") == 0
    with pytest.raises(SettingsError, match="snapshot_keep=-1"):
        setting({"snapshot_keep": -1}, "snapshot_keep")
    with pytest.raises(SettingsError, match=r"devkit\.snapshot_kep is no setting"):
        setting({"snapshot_kep": 0}, "snapshot_keep")
    # Another setting's bad value is named too, once this one was changed (all are validated).
    with pytest.raises(SettingsError, match="postgres_port=70000"):
        setting({"snapshot_keep": 3, "postgres_port": 70000}, "snapshot_keep")
