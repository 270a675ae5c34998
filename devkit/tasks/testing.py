"""test: the test suite, in two lanes (docs/ARCHITECTURE.md, "Tests")."""

from __future__ import annotations

import subprocess

from invoke import Collection, Exit, task

from devkit.paths import KIT_ROOT


@task(
    help={
        "quick": "Unit tests and linters only: no Docker, no root, nothing on this machine changed",
        "marker": "Only tests with this pytest marker expression (unit, docker, ansible, infra, machine)",
        "keyword": "Only tests matching this pytest -k expression",
        "workers": "Parallel workers for the full lane (default 2; 0: one process)",
    }
)
def test(c, quick=False, marker=None, keyword=None, workers=2):
    """Run the test suite with pytest: everything, or --quick (unit tests and linters)."""
    from devkit.testsuite import pytest_command

    code = subprocess.run(
        pytest_command(quick=quick, marker=marker, keyword=keyword, workers=int(workers)),
        cwd=KIT_ROOT,
        check=False,
    ).returncode
    if code != 0:
        raise Exit(code=code)


ns = Collection(test)
