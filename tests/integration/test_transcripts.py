"""The guide's sample sessions (docs/transcripts) are what the kit prints: scripts/transcripts.py
runs their story again for real (the old container, setup, F5's start task, backup and restore,
doctor) and compares, numbers and table spacing aside."""

import subprocess
import sys
from pathlib import Path

import pytest

# Only runs `setup` as a user does (as test_setup.py): beside the others of that kind.
pytestmark = [pytest.mark.docker, pytest.mark.ansible, pytest.mark.machine(shared=True)]

KIT = Path(__file__).resolve().parents[2]


def test_the_transcripts_match_a_real_run():
    checked = subprocess.run(
        [sys.executable, str(KIT / "scripts" / "transcripts.py"), "--check"],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout[-6000:] + checked.stderr[-3000:]
    assert "4 transcripts match the kit" in checked.stdout
