import pytest

from devkit.errors import SettingsError
from devkit.settings.model import load_settings
from devkit.settings.table import DEFAULTS

pytestmark = pytest.mark.unit


def test_defaults_are_valid_and_loopback():
    settings = load_settings(DEFAULTS)
    assert settings.bind_address == "127.0.0.1"
    assert (settings.postgres_port, settings.redis_port) == (5432, 6379)


def test_environment_strings_are_coerced():
    assert load_settings({"postgres_port": "5433"}).postgres_port == 5433


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("postgres_port", 70000, "postgres_port=70000"),
        ("redis_port", 0, "redis_port=0"),
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
    import importlib.util

    from devkit.paths import KIT_ROOT

    spec = importlib.util.spec_from_file_location(
        "devkit_env", KIT_ROOT / "playbooks" / "filter_plugins" / "devkit_env.py"
    )
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    good = "x" * 24
    settings = {"project_name": "app", "app_dir": "/srv/app", "postgres_port": 99999}
    problems = plugin.inventory_problems(settings, good, "short")
    assert problems[0].startswith("devkit_postgres_port=99999: ")
    assert problems[1] == (
        "devkit_redis_password is shorter than 16 characters (it must come from the inventory's vault)"
    )
    assert plugin.inventory_problems({"project_name": "app", "app_dir": "/srv"}, good, good) == []
    assert "holds a character" in plugin.inventory_problems({}, good + "$HOME", good)[0]
