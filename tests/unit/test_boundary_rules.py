"""The smaller rules of the superuser boundary (issue 34), each as the kit applies it: names that
carry a newline, settings that are misspelt or out of range, an .env.local naming a bad project
or another directory, files the kit deletes, a killed backup's partial file, a broken
invoke.yaml."""

import fcntl
import os
import time

import pytest

from devkit.errors import DataConflict, SettingsError, SetupRequired

pytestmark = pytest.mark.unit


def test_an_s3_name_with_a_trailing_newline_is_refused():
    from devkit.destinations import check_name

    assert check_name("backup_20260101_000000.backup.gz")
    with pytest.raises(SettingsError):
        check_name("backup_20260101_000000.backup.gz\n")


def test_a_misspelt_setting_is_refused_with_the_one_meant():
    from devkit.settings.model import load_settings
    from devkit.settings.table import DEFAULTS

    with pytest.raises(SettingsError) as refused:
        load_settings({**DEFAULTS, "snapshot_kepp": 3})
    assert "devkit.snapshot_kepp is no setting" in refused.value.cause
    assert "did you mean devkit.snapshot_keep?" in refused.value.hint


@pytest.mark.parametrize("value", ["many", -1])
def test_everyday_tasks_check_a_setting_setup_has_not_checked(tmp_path, value):
    """`snapshot_keep: many` (or -1) in invoke.yaml: db.snapshots used to run on."""
    from devkit.envfile import load_stack, unchecked
    from devkit.settings.table import DEFAULTS

    config = {**DEFAULTS, "snapshot_keep": value, "app_dir": str(tmp_path)}
    assert unchecked(config, {}) == ["snapshot_keep"]
    assert unchecked({**DEFAULTS}, {}) == []
    (tmp_path / ".env.local").write_text(ENV)
    with pytest.raises(SettingsError) as refused:
        load_stack(config)
    assert "snapshot_keep" in refused.value.cause


ENV = (
    "DEVKIT_PROJECT_NAME=app-1\nPGPORT=5432\nREDIS_PORT=6379\nPGPASSWORD=p\nREDIS_PASSWORD=r\n"
    "DEVKIT_BIND_ADDRESS=127.0.0.1\nPGUSER=app\nPGDATABASE=app_db\nPGHOST=127.0.0.1\n"
    "DATABASE_URL_SYNC=postgresql://app:p@127.0.0.1:5432/app_db\n"
    "DEVKIT_POSTGRES_IMAGE=devkit/postgres:16-bookworm\nDEVKIT_REDIS_IMAGE=devkit/redis:7-bookworm\n"
)


def test_a_project_name_that_is_no_project_name_is_refused(tmp_path):
    from devkit.envfile import check_stack_values, read_env_file

    path = tmp_path / ".env.local"
    path.write_text(ENV.replace("app-1", '"Bad Name;rm"'))
    with pytest.raises(SetupRequired) as refused:
        check_stack_values(path, read_env_file(path))
    assert "is not a project name" in refused.value.cause


def test_an_env_file_written_for_another_directory_still_there_is_a_copys(tmp_path):
    from devkit.envfile import check_own_directory

    original, copy = tmp_path / "a1", tmp_path / "a1copy"
    original.mkdir()
    copy.mkdir()
    values = {"DEVKIT_APP_DIR": str(original)}
    with pytest.raises(DataConflict) as refused:
        check_own_directory(copy / ".env.local", values)
    assert "give the copy a stack of its own" in refused.value.hint
    check_own_directory(original / ".env.local", values)  # its own
    os.symlink(original, tmp_path / "link")
    check_own_directory(tmp_path / "link" / ".env.local", values)  # the same directory
    original.rmdir()
    check_own_directory(copy / ".env.local", values)  # moved: setup takes the stack over


def test_the_original_of_a_moved_app_must_be_provably_gone(tmp_path):
    from devkit.volumes import original_in_place

    assert original_in_place(str(tmp_path / "gone"), "p") is False
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / ".env.local").write_text("DEVKIT_PROJECT_NAME=p\n")
    assert original_in_place(str(tmp_path / "here"), "p") is True
    assert original_in_place(str(tmp_path / "here"), "other") is False
    (tmp_path / "file").write_text("")
    assert original_in_place(str(tmp_path / "file"), "p") is False  # ENOTDIR: not a directory


def test_the_kit_deletes_only_regular_files_directly_in_its_directory(tmp_path):
    from devkit.paths import remove_kit_file

    kit = tmp_path / "kit"
    kit.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's")
    (kit / "link.keys.gz").symlink_to(victim)
    assert not remove_kit_file(kit / "link.keys.gz", kit)
    assert not remove_kit_file(victim, kit)
    assert not remove_kit_file(kit / ".." / "victim.txt", kit)
    assert victim.read_text() == "the user's" and (kit / "link.keys.gz").is_symlink()
    (kit / "own.keys.gz").write_text("x")
    assert remove_kit_file(kit / "own.keys.gz", kit)
    assert not (kit / "own.keys.gz").exists()
    assert not remove_kit_file(kit / "missing.keys.gz", kit)


def test_the_ready_copys_log_is_never_written_through_a_link(tmp_path, monkeypatch):
    """A symlink where the background copy's log goes (spare.log): the user's file it points to
    is not truncated, and no copy is started (the next restore copies, as without one)."""
    import subprocess
    from types import SimpleNamespace

    from devkit import snapshot_spares

    monkeypatch.setenv("DEVKIT_STATE_DIR", str(tmp_path / "state"))
    stack = SimpleNamespace(project="p", env_file=tmp_path / ".env.local")
    kit = tmp_path / "state" / "snapshots" / "p"
    kit.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's")
    (kit / "spare.log").symlink_to(victim)
    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: started.append(args))
    snapshot_spares.start(stack, "mine")
    assert victim.read_text() == "the user's" and started == []


def test_a_killed_backups_partial_file_goes_with_the_next_backup(tmp_path):
    """kill -9 leaves `.backup_….partial`; the next backup removes it, unless its writer still
    holds it (the lock a live backup keeps)."""
    from datetime import UTC, datetime

    from devkit.backup.files import ABANDONED_AFTER, new_backup_file

    old = time.time() - ABANDONED_AFTER - 5
    dead = tmp_path / ".backup_20260101_000000.backup.gz.partial"
    dead.write_bytes(b"half")
    live = tmp_path / ".backup_20260101_000001.backup.gz.partial"
    live.write_bytes(b"being written")
    young = tmp_path / ".backup_20260101_000002.backup.gz.partial"
    young.write_bytes(b"just made")
    for path in (dead, live):
        os.utime(path, (old, old))
    writer = os.open(live, os.O_RDONLY)
    fcntl.flock(writer, fcntl.LOCK_EX)
    try:
        new = new_backup_file(tmp_path, datetime.now(UTC), ".backup.gz")
        os.close(new.fd)
    finally:
        os.close(writer)
    assert not dead.exists()
    assert live.exists() and young.exists()


def test_a_broken_invoke_yaml_is_named_without_a_traceback(tmp_path):
    from invoke.vendor import yaml

    from devkit.cli import bad_config_file

    path = tmp_path / "invoke.yaml"
    path.write_text("devkit:\n  postgres_port: [5433\n")
    with path.open() as f, pytest.raises(yaml.YAMLError) as broken:
        yaml.safe_load(f)
    said = bad_config_file(broken.value)
    assert said.startswith(f"error: {path}, line 3, column 1 is not valid YAML (")
    assert "\n  fix: " in said


def test_an_empty_snapshot_name_is_refused():
    from devkit.errors import BadArgument
    from devkit.snapshot_catalog import check_name

    with pytest.raises(BadArgument):
        check_name("")


def test_a_plain_dumps_meta_command_is_named_with_its_line():
    from devkit.backup.pgdump import DumpError, plain_parts

    dump = b"--\n-- PostgreSQL database dump\n--\nSELECT 1;\n  \\! id\n"
    with pytest.raises(DumpError) as refused:
        list(plain_parts(dump.splitlines(keepends=True), "x.sql"))
    assert refused.value.cause.startswith("x.sql line 5: '\\\\! id' is a psql meta-command")
    seen = []
    dump = b"\\restrict K1\nCOPY public.t (a) FROM stdin;\n\\! data\n\\.\n\\unrestrict K1\n"
    for part in plain_parts(dump.splitlines(keepends=True), "y.sql"):
        seen.append((type(part).__name__, list(part.rows)))
    assert seen == [("_Copy", [b"\\! data\n"])]
