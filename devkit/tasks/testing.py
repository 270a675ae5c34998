"""test: the whole test suite (unit, Docker integration, Ansible, testinfra)."""

from __future__ import annotations

import subprocess
import sys

from invoke import Collection, Exit, task

from devkit.paths import KIT_ROOT


@task(
    help={
        "marker": "Only tests with this pytest marker expression (unit, docker, ansible, infra)",
        "keyword": "Only tests matching this pytest -k expression",
    }
)
def test(c, marker=None, keyword=None):
    """Run the test suite with pytest."""
    command = [sys.executable, "-m", "pytest"]
    if marker:
        command += ["-m", marker]
    if keyword:
        command += ["-k", keyword]
    code = subprocess.run(command, cwd=KIT_ROOT, check=False).returncode
    if code != 0:
        raise Exit(code=code)


ns = Collection(test)
