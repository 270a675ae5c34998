"""A clone made as Git for Windows makes it (core.autocrlf=true, its installer's default) keeps
LF line endings in everything the kit runs or renders: scripts, templates, playbooks, compose
(was: CRLF, and `bash scripts/devkit` failed with "$'\\r': command not found")."""

import subprocess

import pytest

from devkit.paths import KIT_ROOT

pytestmark = pytest.mark.unit

RUN_OR_RENDERED = (
    "scripts/*",
    ".ci/*",
    "*.sh",
    "*.j2",
    "vscode-templates/*",
    "compose/*",
    "*.yml",
    "*.yaml",
    "*.py",
    "*.cfg",
)


def test_a_clone_with_autocrlf_keeps_lf_in_what_the_kit_runs(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "clone", "-q", "-c", "core.autocrlf=true", str(KIT_ROOT), str(clone)],
        check=True,
    )
    files = subprocess.run(
        ["git", "ls-files", "--", *RUN_OR_RENDERED],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "scripts/devkit" in files and "vscode-templates/devkit-services.sh" in files
    with_crlf = [name for name in files if b"\r\n" in (clone / name).read_bytes()]
    assert with_crlf == []
