"""The house style, checked by the suite: ruff for Python, ansible-lint (production profile)
and yamllint for roles, playbooks, inventories and compose."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.mark.unit
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(command):
    result = run(str(BIN / "ruff"), *command, ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.unit
def test_yamllint():
    result = run(str(BIN / "yamllint"), "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.ansible
def test_ansible_lint_production_profile():
    result = run(str(BIN / "ansible-lint"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr
