"""merge_env (devkit.dotenv), as the stack role's filter calls it."""

import importlib.util
from pathlib import Path

import pytest

from devkit.dotenv import parse_env

pytestmark = pytest.mark.unit

_spec = importlib.util.spec_from_file_location(
    "stack_env", Path(__file__).parents[2] / "roles/stack/filter_plugins/stack_env.py"
)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
merge_env = _module.stack_merge_env


def test_keeps_the_apps_lines_and_replaces_the_kits_in_place():
    text = "# app\nAPP_KEY=1\nexport DATABASE_URL=postgresql://postgres:postgres@localhost/app_db\n\nOTHER=2\n"
    merged = merge_env(
        text, {"DATABASE_URL": "postgresql://app:pw@127.0.0.1/app_db", "PGPORT": "5432"}
    )
    assert (
        merged
        == "# app\nAPP_KEY=1\nDATABASE_URL=postgresql://app:pw@127.0.0.1/app_db\n\nOTHER=2\nPGPORT=5432\n"
    )


def test_is_idempotent_and_drops_overriding_duplicates():
    once = merge_env("A=1\nPGPORT=1\nPGPORT=2\n", {"PGPORT": "5432"})
    assert once == "A=1\nPGPORT=5432\n"
    assert merge_env(once, {"PGPORT": "5432"}) == once


def test_new_file():
    assert merge_env("", {"A": "1", "B": "2"}) == "A=1\nB=2\n"


def test_a_value_over_several_lines_is_one_statement():
    """Was: merge_env read line by line, so a line inside the app's quoted value that looked
    like a kit key was replaced, and the value cut."""
    text = 'CERT="-----BEGIN-----\nPGPORT=1\n-----END-----"\nPGPORT=2\nAPP=x\n'
    merged = merge_env(text, {"PGPORT": "5432"})
    assert merged == 'CERT="-----BEGIN-----\nPGPORT=1\n-----END-----"\nPGPORT=5432\nAPP=x\n'
    assert parse_env(merged, {})["CERT"] == "-----BEGIN-----\nPGPORT=1\n-----END-----"


def test_the_kit_reads_back_what_it_merged_whatever_form_the_app_used():
    """Was: a `KEY: value` line (Compose reads it) was kept beside the kit's own line: two
    statements of the key in the file."""
    text = "PGPORT: 1\nexport REDIS_PORT =2\nA=1 # note\n"
    merged = merge_env(text, {"PGPORT": "5432", "REDIS_PORT": "6379"})
    assert parse_env(merged, {}) == {"PGPORT": "5432", "REDIS_PORT": "6379", "A": "1"}
    assert merged.count("PGPORT") == 1 and merged.count("REDIS_PORT") == 1


def test_a_file_compose_refuses_is_refused_naming_the_line():
    with pytest.raises(ValueError, match="line 2"):
        merge_env("A=1\nB='open\n", {"PGPORT": "5432"})


def test_a_file_without_a_final_newline_gets_one():
    assert merge_env("A=1", {"B": "2"}) == "A=1\nB=2\n"


def test_statements_sharing_a_line_are_set_in_place():
    """Compose reads on after a closing quote: `A="1" PGPORT=2` is two statements on one line."""
    merged = merge_env('A="1" PGPORT=2\nB=3\n', {"PGPORT": "5432"})
    assert merged == 'A="1" PGPORT=5432\nB=3\n'
    assert parse_env(merged, {}) == {"A": "1", "PGPORT": "5432", "B": "3"}
    merged = merge_env('PGPORT="1" # note\nPGPORT=2\n', {"PGPORT": "5432"})
    assert merged == "PGPORT=5432 # note\n"


def test_the_volume_check_reads_which_keys_the_file_sets_without_expanding_them():
    """A value Compose expands from the shell (`${HOME:?}`) is no error when the role only asks
    whether the file already holds a password."""
    conflict = _module.stack_volume_conflict
    volume = {"exists": True, "volume": {"Labels": {}}}
    env = {"DEVKIT_PROJECT_NAME": "p", "DEVKIT_APP_DIR": "/srv/app"}
    assert conflict(volume, env, "HOMEDIR=${HOME:?}\nPGPASSWORD=x\n") == ""
    assert "another setup" in conflict(volume, env, "HOMEDIR=${HOME:?}\n")
    assert conflict({"exists": False}, env, "") == ""
    owned = {"exists": True, "volume": {"Labels": {"io.devkit.app-dir": "/srv/other"}}}
    assert "the app in /srv/other" in conflict(owned, env, "PGPASSWORD=x\n")


def test_a_stack_belongs_to_the_app_its_containers_name_or_that_proved_it_moved():
    """The volume keeps the directory it was made for (Docker cannot relabel it); the containers
    name the app they run for now, and setup may prove a move (devkit/volumes.py)."""
    conflict = _module.stack_volume_conflict
    env = {"DEVKIT_PROJECT_NAME": "p", "DEVKIT_APP_DIR": "/srv/app"}
    made_for_old = {"exists": True, "volume": {"Labels": {"io.devkit.app-dir": "/srv/old"}}}
    running_for = {
        "exists": True,
        "container": {"Config": {"Labels": {"io.devkit.app-dir": "/srv/app"}}},
    }
    assert conflict(made_for_old, env, "PGPASSWORD=x\n", running_for) == ""
    assert "the app in /srv/old" in conflict(made_for_old, env, "PGPASSWORD=x\n", {"exists": False})
    assert conflict(made_for_old, env, "PGPASSWORD=x\n", {"exists": False}, "/srv/old") == ""
    assert "/srv/old" in conflict(made_for_old, env, "PGPASSWORD=x\n", {"exists": False}, "/srv/x")
