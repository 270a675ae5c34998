from urllib.parse import urlsplit

import pytest

from devkit.dotenv import EnvFileError
from devkit.envfile import (
    MANAGED_KEYS,
    SECRET_KEYS,
    drift,
    env_values,
    load_stack,
    read_env_file,
    subprocess_environ,
)
from devkit.errors import SettingsError, SetupRequired
from devkit.settings.model import load_settings
from devkit.settings.table import DEFAULTS

pytestmark = pytest.mark.unit

# Settings as setup hands them to env_values: the per-app ones settled (devkit.stacks.settle).
SETTLED = {"project_name": "myapp-0a1b2c", "postgres_port": 5432, "redis_port": 6379}


def test_values_carry_the_whole_contract(contract_keys):
    values = env_values(load_settings(SETTLED), {})
    assert set(contract_keys) <= set(values)
    assert values["DATABASE_URL"].startswith("postgresql+asyncpg://app:")
    assert values["DATABASE_URL_SYNC"].startswith("postgresql://app:")
    url = urlsplit(values["DATABASE_URL_SYNC"])
    assert (url.hostname, url.port, url.path, url.password) == (
        "127.0.0.1",
        5432,
        "/app_db",
        values["PGPASSWORD"],
    )
    assert urlsplit(values["REDIS_URL"]).password == values["REDIS_PASSWORD"]
    assert values["DB_PASSWORD"] == values["PGPASSWORD"]


def test_managed_keys_cover_everything_written():
    written = env_values(load_settings(SETTLED), {})
    assert set(written) | {"DEVKIT_POSTGRES_IMAGE", "DEVKIT_REDIS_IMAGE"} == MANAGED_KEYS


def test_subprocesses_do_not_inherit_the_kits_keys(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "from-shell")
    monkeypatch.setenv("HOME_SWEET", "kept")
    environ = subprocess_environ()
    assert "PGPASSWORD" not in environ and environ["HOME_SWEET"] == "kept"


def test_passwords_are_random_strong_and_kept():
    first = env_values(load_settings(SETTLED), {})
    second = env_values(load_settings(SETTLED), {})
    assert first["PGPASSWORD"] != second["PGPASSWORD"]
    assert len(first["PGPASSWORD"]) >= 24 and first["PGPASSWORD"] != first["REDIS_PASSWORD"]
    again = env_values(load_settings(SETTLED), first)
    assert (again["PGPASSWORD"], again["REDIS_PASSWORD"]) == (
        first["PGPASSWORD"],
        first["REDIS_PASSWORD"],
    )


def test_read_env_file_handles_comments_export_and_quotes(tmp_path):
    path = tmp_path / ".env.local"
    path.write_text("# comment\n\nexport A=1\nB=\"two words\"\nC='x=y'\n")
    assert read_env_file(path) == {"A": "1", "B": "two words", "C": "x=y"}
    assert read_env_file(tmp_path / "missing") == {}


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (b"PGPASSWORD=secret-value\nnot a pair\n", "line 2 is not KEY=value"),
        (b"PGPASSWORD='secret-value\n", "line 1: the value's ' quote is never closed"),
        (b'PGPASSWORD="secret-value" a b\n', "line 1 is not KEY=value"),
        (b"PGPASSWORD=secret-value\nB=caf\xe9\n", "is not UTF-8 (byte 0xe9 on line 2)"),
    ],
)
def test_a_file_compose_would_refuse_is_refused_without_its_values(tmp_path, content, cause):
    path = tmp_path / ".env.local"
    path.write_bytes(content)
    with pytest.raises(EnvFileError) as raised:
        read_env_file(path)
    assert cause in raised.value.cause and "secret-value" not in raised.value.render()
    assert raised.value.hint


def test_a_directory_in_place_of_the_file_is_named(tmp_path):
    (tmp_path / ".env.local").mkdir()
    with pytest.raises(EnvFileError, match="is a directory"):
        read_env_file(tmp_path / ".env.local")


def test_a_byte_order_mark_is_not_part_of_the_first_key(tmp_path):
    path = tmp_path / ".env.local"
    path.write_bytes(b"\xef\xbb\xbfA=1\n")
    assert read_env_file(path) == {"A": "1"}


def test_drift_lists_changed_settings_but_never_secrets():
    written = env_values(load_settings(SETTLED), {})
    assert drift(DEFAULTS, written) == []
    changed = drift({**DEFAULTS, "postgres_port": 5433}, written)
    assert changed == ["PGPORT 5432 -> 5433"]
    assert not any(written[key] in line for line in changed for key in SECRET_KEYS)


def test_load_stack_requires_setup(tmp_path):
    with pytest.raises(SetupRequired, match=r"is missing or empty") as caught:
        load_stack({**DEFAULTS, "app_dir": str(tmp_path)})
    assert "devkit setup" in caught.value.hint


def test_load_stack_refuses_drift(tmp_path):
    settings = load_settings({**SETTLED, "app_dir": str(tmp_path)})
    values = env_values(settings, {}) | {"DEVKIT_POSTGRES_IMAGE": "p", "DEVKIT_REDIS_IMAGE": "r"}
    (tmp_path / ".env.local").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    config = {**DEFAULTS, "app_dir": str(tmp_path)}
    assert load_stack(config).pg_port == 5432
    with pytest.raises(SetupRequired, match="settings changed since setup"):
        load_stack({**config, "redis_port": 6380})


def test_a_file_from_before_the_wal_level_runs_on_until_setup_writes_it(tmp_path):
    """An .env.local an earlier kit wrote has no DEVKIT_PG_WAL_LEVEL: everyday tasks go on with
    it (compose.yaml's default runs the server as before), unless the setting was asked for;
    setup writes the key, and max_wal_senders with it (0 at minimal, else PostgreSQL's 10)."""
    settings = load_settings({**SETTLED, "app_dir": str(tmp_path)})
    values = env_values(settings, {}) | {"DEVKIT_POSTGRES_IMAGE": "p", "DEVKIT_REDIS_IMAGE": "r"}
    assert (values["DEVKIT_PG_WAL_LEVEL"], values["DEVKIT_PG_MAX_WAL_SENDERS"]) == ("minimal", "0")
    old = {k: v for k, v in values.items() if not k.startswith("DEVKIT_PG_")}
    (tmp_path / ".env.local").write_text("".join(f"{k}={v}\n" for k, v in old.items()))
    config = {**DEFAULTS, "app_dir": str(tmp_path)}
    assert load_stack(config).pg_port == 5432
    with pytest.raises(SetupRequired, match=r"DEVKIT_PG_WAL_LEVEL \(unset\) -> logical"):
        load_stack({**config, "postgres_wal_level": "logical"})
    (tmp_path / ".env.local").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    with pytest.raises(SetupRequired, match="DEVKIT_PG_WAL_LEVEL minimal -> replica"):
        load_stack({**config, "postgres_wal_level": "replica"})
    for level in ("replica", "logical"):
        server = env_values(load_settings({**SETTLED, "postgres_wal_level": level}), {})
        assert server["DEVKIT_PG_MAX_WAL_SENDERS"] == "10"


def test_compose_runs_a_file_without_a_newer_key_as_before():
    """compose.yaml gives each key a file may lack a default: what the services ran with before
    the key (PostgreSQL's own wal_level and max_wal_senders)."""
    from devkit.compose import file_defaults
    from devkit.settings.table import SETTINGS

    later = [s.env_key for s in SETTINGS.values() if s.key_may_be_missing]
    assert later == ["DEVKIT_PG_WAL_LEVEL"]
    defaults = file_defaults()
    assert (defaults["DEVKIT_PG_WAL_LEVEL"], defaults["DEVKIT_PG_MAX_WAL_SENDERS"]) == (
        "replica",
        "10",
    )


def test_load_stack_names_a_bad_value_rather_than_drift(tmp_path):
    settings = load_settings({**SETTLED, "app_dir": str(tmp_path)})
    values = env_values(settings, {}) | {"DEVKIT_POSTGRES_IMAGE": "p", "DEVKIT_REDIS_IMAGE": "r"}
    (tmp_path / ".env.local").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    config = {**DEFAULTS, "app_dir": str(tmp_path)}
    with pytest.raises(SettingsError, match="bad setting redis_port=99999"):
        load_stack({**config, "redis_port": 99999})
    with pytest.raises(SettingsError, match="bad setting ready_timeout"):
        load_stack({**config, "ready_timeout": "soon"})


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("CHANGE-ME-postgres-password", "CHANGE-ME placeholder"),
        ("my-change-me-redis-password-1234", "CHANGE-ME placeholder"),
        ("short", "shorter than 16"),
        ("", "shorter than 16"),
        ("Zq0v7d1m3QeX9rT2kLp8", ""),
    ],
)
def test_password_policy_for_servers(password, problem):
    from devkit.passwords import password_problem

    assert (problem in password_problem(password)) if problem else password_problem(password) == ""
