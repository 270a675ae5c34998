"""The test suite's two lanes as pytest command lines (`invoke test [--quick]`)."""

from __future__ import annotations

import sys

# The quick lane: what needs no Docker, no root and changes nothing on this machine.
QUICK = "unit and not machine"


def pytest_command(
    quick: bool = False, marker: str | None = None, keyword: str | None = None, workers: int = 2
) -> list[str]:
    """pytest's argv. The full lane runs its tests on `workers` processes (pytest-xdist): each
    worker sets up a stack of its own, tests that share something else (the fleet's SSH hosts,
    a change to the machine) are grouped onto one worker (tests/conftest.py)."""
    command = [sys.executable, "-m", "pytest"]
    expression = " and ".join(f"({m})" for m in (QUICK if quick else None, marker) if m)
    if expression:
        command += ["-m", expression]
    if keyword:
        command += ["-k", keyword]
    if not quick and workers > 0:
        command += ["-n", str(workers), "--dist", "loadgroup"]
    return command
