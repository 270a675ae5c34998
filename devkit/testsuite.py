"""The test suite's two lanes as pytest command lines (`devkit test [--quick]`)."""

from __future__ import annotations

import sys

# The quick lane: what needs no Docker, no root and changes nothing on this machine.
QUICK = "unit and not machine"


def pytest_command(
    quick: bool = False, marker: str | None = None, keyword: str | None = None, workers: int = 2
) -> list[str]:
    """pytest's argv. The full lane runs its test files on `workers` processes (pytest-xdist,
    a file's tests on one worker: the fleet's two SSH hosts are one file's), each worker with a
    stack of its own; tests marked `machine` take turns (tests/conftest.py). Files are handed
    out in the order collected, so the longest, tests/fleet, starts first (xdist's default
    starts the files with the most tests first: the fleet then began a minute in and ended
    the lane alone)."""
    command = [sys.executable, "-m", "pytest"]
    expression = " and ".join(f"({m})" for m in (QUICK if quick else None, marker) if m)
    if expression:
        command += ["-m", expression]
    if keyword:
        command += ["-k", keyword]
    if not quick and workers > 0:
        command += ["-n", str(workers), "--dist", "loadfile", "--no-loadscope-reorder"]
    return command
