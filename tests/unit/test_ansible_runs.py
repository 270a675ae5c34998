"""What keeps a playbook run cheap on the controller: the filters' modules imported before
Ansible forks (devkit/ansible_playbook.py), and the kit's archive for servers made only when
its inputs change (devkit/bundle.py)."""

import subprocess
import sys

import pytest

from devkit import bundle
from devkit.ansible_playbook import filter_imports
from devkit.paths import KIT_ROOT

pytestmark = pytest.mark.unit


def test_the_filters_modules_are_found_in_every_plugin(tmp_path):
    plugins = tmp_path / "roles" / "some_role" / "filter_plugins"
    plugins.mkdir(parents=True)
    (plugins / "one.py").write_text("import re\nfrom devkit.settings.model import x\n")
    (tmp_path / "playbooks" / "filter_plugins").mkdir(parents=True)
    (tmp_path / "playbooks" / "filter_plugins" / "two.py").write_text("import devkit.wsl, os\n")
    assert filter_imports(tmp_path) == ["devkit.settings.model", "devkit.wsl"]
    # The kit's own: the settings model (pydantic) is the costly one.
    assert "devkit.settings.model" in filter_imports(KIT_ROOT)


def test_it_runs_as_ansible_playbook():
    shown = subprocess.run(
        [sys.executable, "-m", "devkit.ansible_playbook", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0 and shown.stdout.startswith("ansible-playbook [core 2."), shown


def test_the_kits_archive_is_made_again_only_when_its_inputs_change(tmp_path, monkeypatch):
    source = tmp_path / "tasks.py"
    source.write_text("print('v1')\n")
    monkeypatch.setattr(bundle, "_files", lambda: [("tasks.py", source)])
    wheels = tmp_path / "out" / "cache" / "wheels"
    wheels.mkdir(parents=True)
    (wheels / ".complete").write_text("")
    (wheels / "six-1.16.0-py2.py3-none-any.whl").write_bytes(b"a wheel")
    monkeypatch.setattr(bundle, "download_wheels", lambda *args: wheels)
    out = tmp_path / "out"

    archive, changed = bundle.build("3.11.2", "x86_64", out)
    assert changed
    made = archive.stat().st_mtime_ns
    compress = bundle.gzip.GzipFile
    with monkeypatch.context() as nothing_compressed:
        nothing_compressed.setattr(bundle.gzip, "GzipFile", None)  # made again: TypeError
        assert bundle.build("3.11.2", "x86_64", out) == (archive, False)
    assert archive.stat().st_mtime_ns == made and bundle.gzip.GzipFile is compress
    source.write_text("print('v2')\n")
    assert bundle.build("3.11.2", "x86_64", out) == (archive, True)
    # An archive whose inputs record is gone is compared byte for byte: the same bytes.
    archive.with_name(f"{archive.name}.inputs").unlink()
    assert bundle.build("3.11.2", "x86_64", out) == (archive, False)


def test_the_kits_archive_carries_the_checksums_sha256sum_checks(tmp_path, monkeypatch):
    """The kit role runs `sha256sum --check` on a server's unpacked kit (roles/kit): the archive's
    manifest passes on the files as unpacked, and names a file edited by hand."""
    import subprocess
    import tarfile

    compose = tmp_path / "compose.yaml"
    compose.write_text("restart: unless-stopped\n")
    monkeypatch.setattr(bundle, "_files", lambda: [("compose/compose.yaml", compose)])
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    monkeypatch.setattr(bundle, "download_wheels", lambda *args: wheels)
    (tmp_path / "out").mkdir()
    archive, _ = bundle.build("3.11.2", "x86_64", tmp_path / "out")
    unpacked = tmp_path / "kit"
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sha256sum", "--check", "--quiet", bundle.MANIFEST],
            cwd=unpacked, capture_output=True, text=True, check=False,
        )  # fmt: skip

    assert check().returncode == 0
    (unpacked / "compose" / "compose.yaml").write_text('restart: "no"\n')
    edited = check()
    assert edited.returncode == 1 and edited.stdout == "compose/compose.yaml: FAILED\n"
    (unpacked / "requirements.txt").unlink()
    assert "requirements.txt: FAILED open or read" in check().stdout
