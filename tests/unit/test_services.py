"""devkit/services.py is the one definition of the kit's services: compose.yaml, the settings,
.env.local, the roles and the inventories must agree with it."""

import re

import pytest
import yaml

from devkit.paths import COMPOSE_FILE, KIT_ROOT
from devkit.services import IMAGE_KEYS, KINDS, SERVICES

pytestmark = pytest.mark.unit

COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
ROW = pytest.mark.parametrize("service", list(SERVICES.values()), ids=list(SERVICES))


def test_compose_defines_each_service_of_the_table_and_no_other():
    assert sorted(COMPOSE["services"]) == sorted(SERVICES)
    assert sorted(COMPOSE["volumes"]) == sorted(s.volume for s in SERVICES.values())


@ROW
def test_compose_runs_the_service_as_the_table_says(service):
    spec = COMPOSE["services"][service.name]
    assert re.fullmatch(rf"\$\{{{service.image_key}:\?.+\}}", spec["image"])
    assert spec["ports"] == [
        f"${{DEVKIT_BIND_ADDRESS:-127.0.0.1}}:${{{service.port_key}:-{service.preferred_port}}}"
        f":{service.container_port}"
    ]
    assert any(volume.startswith(f"{service.volume}:") for volume in spec["volumes"])
    assert f"${{{service.password_key}:?" in yaml.safe_dump(spec["environment"], width=1000)
    assert spec["healthcheck"]["test"], "every stateful service has a healthcheck"
    assert service.kind in KINDS


@ROW
def test_each_service_has_its_port_setting(service):
    from devkit.settings.table import SETTINGS

    setting = SETTINGS[service.port_setting]
    assert setting.env_key == service.port_key
    assert setting.per_app and setting.server
    assert setting.server_default == service.preferred_port


@ROW
def test_env_local_carries_each_service(service, tmp_path):
    from devkit.envfile import COMPOSE_INPUTS, MANAGED_KEYS, SECRET_KEYS, STACK_KEYS, env_values
    from devkit.settings.model import load_settings
    from devkit.stacks import pick_ports

    ports = dict(zip(SERVICES, pick_ports("127.0.0.1", set()), strict=True))
    settings = load_settings(
        {
            "app_dir": str(tmp_path),
            "project_name": "p",
            **{s.port_setting: ports[name] for name, s in SERVICES.items()},
        }
    )
    values = env_values(settings, {})
    assert values[service.port_key] == str(ports[service.name])
    assert len(values[service.password_key]) >= 16
    for url in service.url_keys:
        assert f":{ports[service.name]}/" in values[url]
        assert url in SECRET_KEYS
    assert {service.port_key, service.password_key} <= set(COMPOSE_INPUTS) & set(STACK_KEYS)
    assert service.image_key in IMAGE_KEYS and service.image_key in MANAGED_KEYS


@ROW
def test_the_images_role_provides_each_services_image(service):
    tasks = yaml.safe_load((KIT_ROOT / "roles/images/tasks/main.yml").read_text())
    chosen = next(t for t in tasks if t.get("name") == "Choose an image for each service")
    assert service.image in [item["service"] for item in chosen["loop"]]
    assert (KIT_ROOT / f"roles/images/tasks/build-{service.image}.yml").is_file()
    defaults = yaml.safe_load((KIT_ROOT / "roles/images/defaults/main.yml").read_text())
    assert {f"images_{service.image}_official", f"images_{service.image}_local"} <= set(defaults)


@ROW
@pytest.mark.parametrize("inventory", ["production", "staging"])
def test_the_example_vaults_hold_a_password_for_each_service(service, inventory):
    group = KIT_ROOT / "inventories" / inventory / "group_vars/servers"
    vault = yaml.safe_load((group / "vault.yml.example").read_text())
    assert f"vault_{service.server_password_var}" in vault


def test_a_servers_password_is_its_own_variable_else_the_vaults():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "devkit_env", KIT_ROOT / "playbooks/filter_plugins/devkit_env.py"
    )
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    others = list(SERVICES.values())[1:]
    found = plugin.server_passwords(
        {"devkit_postgres_password": "own", "vault_devkit_postgres_password": "vault"}
        | {f"vault_{s.server_password_var}": s.name for s in others}
    )
    assert found == {"PGPASSWORD": "own", **{s.password_key: s.name for s in others}}


def test_the_roles_and_playbooks_name_no_service_image_one_by_one():
    """The stack role takes every image at once (stack_images) and checks the env file with the
    table's keys (its filters), so a new service needs no edit there."""
    texts = [
        path.read_text()
        for pattern in ("roles/stack/**/*.yml", "playbooks/*.yml")
        for path in KIT_ROOT.glob(pattern)
    ]
    for text in texts:
        assert not re.search(r"stack_(postgres|redis)_image|DEVKIT_(POSTGRES|REDIS)_IMAGE", text)
        assert "REDIS_PASSWORD" not in text and "REDIS_PORT" not in text


def test_the_ci_vault_holds_a_password_for_each_service():
    from ansible.parsing.vault import VaultLib, VaultSecret

    ci = KIT_ROOT / "inventories/ci"
    secret = VaultSecret((ci / "vault-password.txt").read_bytes().strip())
    plain = VaultLib([("default", secret)]).decrypt(
        (ci / "group_vars/servers/vault.yml").read_bytes()
    )
    vault = yaml.safe_load(plain)
    assert [
        s.name for s in SERVICES.values() if f"vault_{s.server_password_var}" not in vault
    ] == []
