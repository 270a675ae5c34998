import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

_spec = importlib.util.spec_from_file_location(
    "envfile_filter", Path(__file__).parents[2] / "roles/stack/filter_plugins/envfile.py"
)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
merge_env = _module.merge_env


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
