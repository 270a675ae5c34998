"""After a `git pull` that changed the kit's dependencies, `devkit …` from the PATH (a link to
.venv/bin/devkit) would run with the old packages: a new one missing (psycopg 3 for a restore)
was an ImportError's traceback. devkit/cli.py's stale_environment sees it by scripts/devkit's
own stamp, and main hands the command to scripts/devkit, which installs, then runs it."""

import hashlib
import subprocess

import pytest

from devkit.cli import stale_environment
from devkit.paths import KIT_ROOT

pytestmark = pytest.mark.unit


def kit(tmp_path, stamp: str | None):
    (tmp_path / ".venv").mkdir()
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    (tmp_path / "constraints.txt").write_text("pip==26.3\n")
    if stamp is not None:
        (tmp_path / ".venv" / ".devkit-installed").write_text(stamp + "\n")
    return tmp_path


def scripts_devkit_digest(root) -> str:
    """The digest as scripts/devkit computes it, by its own shell line."""
    line = next(
        line.split("=", 1)[1]
        for line in (KIT_ROOT / "scripts" / "devkit").read_text().splitlines()
        if line.startswith("wanted=")
    )
    script = line.replace('"$root/', f'"{root}/')
    return subprocess.run(
        ["bash", "-c", f"echo {script}"], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_packages_older_than_the_kits_files_are_stale(tmp_path):
    root = kit(tmp_path, "0" * 64)
    assert stale_environment(root, str(root / ".venv"))


def test_the_stamp_scripts_devkit_writes_is_current(tmp_path):
    root = kit(tmp_path, "")
    digest = scripts_devkit_digest(root)
    both = (root / "pyproject.toml").read_bytes() + (root / "constraints.txt").read_bytes()
    assert digest == hashlib.sha256(both).hexdigest()
    (root / ".venv" / ".devkit-installed").write_text(digest + "\n")
    assert not stale_environment(root, str(root / ".venv"))


def test_another_environment_or_no_stamp_is_left_alone(tmp_path):
    root = kit(tmp_path, None)  # a server's .venv, made by the kit role
    assert not stale_environment(root, str(root / ".venv"))
    (tmp_path / "other").mkdir()
    root2 = kit(tmp_path / "other", "0" * 64)
    assert not stale_environment(root2, "/usr")
