"""The kit's state on this machine can be redirected (devkit/paths.py), as pipx's paths can: the
suite and a second, throwaway kit never write the user's."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from devkit import paths

pytestmark = pytest.mark.unit


def test_the_remembered_app_goes_where_devkit_state_file_says(tmp_path, monkeypatch):
    from devkit.app import read_state, record_app_dir

    default = paths.KIT_ROOT / ".devkit" / "state.json"
    before = default.read_bytes() if default.exists() else None
    monkeypatch.setenv("DEVKIT_STATE_FILE", str(tmp_path / "deep" / "state.json"))
    record_app_dir(tmp_path / "app")
    assert read_state() == {"app_dir": str(tmp_path / "app")}
    assert (default.read_bytes() if default.exists() else None) == before


def test_the_private_state_goes_where_devkit_state_dir_says(tmp_path, monkeypatch):
    from devkit.admin_password import admin_env_file
    from devkit.snapshot_catalog import redis_dir

    monkeypatch.delenv("DEVKIT_STATE_DIR", raising=False)
    assert paths.state_dir(Path("/home/u")) == Path("/home/u/.local/state/devkit")
    monkeypatch.setenv("DEVKIT_STATE_DIR", str(tmp_path))
    assert admin_env_file("p") == tmp_path / "stacks" / "p.admin.env"
    assert admin_env_file("p", state=Path("/elsewhere")) == Path("/elsewhere/stacks/p.admin.env")
    assert redis_dir(SimpleNamespace(project="p")) == tmp_path / "snapshots" / "p"


def test_the_command_link_goes_where_devkit_bin_dir_says(tmp_path, monkeypatch):
    monkeypatch.delenv("DEVKIT_BIN_DIR", raising=False)  # the suite's own (tests/conftest.py)
    assert paths.bin_dir(Path("/home/u")) == Path("/home/u/.local/bin")
    monkeypatch.setenv("DEVKIT_BIN_DIR", str(tmp_path / "bin"))
    assert paths.bin_dir(Path("/home/u")) == tmp_path / "bin"
