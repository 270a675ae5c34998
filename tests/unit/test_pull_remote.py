"""How db.pull recognises the server it reached last time (devkit/pull/remote.py): the
inventory's files as they were, and a command line only Host.ssh makes."""

import os

import pytest

from devkit.pull.remote import Host, stamp, valid_command

pytestmark = pytest.mark.unit


def inventory(tmp_path):
    (tmp_path / "group_vars" / "servers").mkdir(parents=True)
    (tmp_path / "hosts.yml").write_text("all: {}\n")
    (tmp_path / "group_vars" / "servers" / "main.yml").write_text("a: 1\n")
    return tmp_path


def test_the_stamp_changes_with_any_file_of_an_inventory_directory(tmp_path):
    path = inventory(tmp_path)
    first = stamp(path)
    assert stamp(path) == first
    assert [entry[0] for entry in first] == ["group_vars/servers/main.yml", "hosts.yml"]
    variables = path / "group_vars" / "servers" / "main.yml"
    info = variables.stat()
    variables.write_text("a: 2\n")  # the same size: its time tells
    os.utime(variables, ns=(info.st_atime_ns, info.st_mtime_ns + 1))
    assert stamp(path) != first
    second = stamp(path)
    (path / "host_vars").mkdir()
    (path / "host_vars" / "web.yml").write_text("b: 1\n")
    assert stamp(path) != second


def test_an_inventory_files_stamp_holds_its_variables_beside_it_and_nothing_else(tmp_path):
    path = inventory(tmp_path)
    (tmp_path / "other.yml").write_text("not this inventory\n")
    names = [entry[0] for entry in stamp(path / "hosts.yml")]
    assert names == ["group_vars/servers/main.yml", "hosts.yml"]


def test_only_a_command_line_host_ssh_makes_is_taken_from_a_record():
    root = Host("web", "10.0.0.5", 2222, "root", "/keys/id", ("-o", "LogLevel=ERROR"))
    user = Host("web", "10.0.0.5", None, "deploy", "", ())
    assert valid_command(root.ssh("devkit", "db.pull.source"))
    assert valid_command(user.ssh("devkit", "db.pull.source"))
    assert not valid_command(None)
    assert not valid_command("ssh web devkit db.pull.source")
    assert not valid_command(["sh", "-c", "--", "devkit db.pull.source"])
    assert not valid_command(root.ssh("devkit", "db.reset"))
    assert not valid_command(["ssh", "web", "--", 5])
