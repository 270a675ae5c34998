"""doctor on a Raspberry Pi: vcgencmd get_throttled's answer as a check (devkit/board.py).

Recorded outputs, as a Raspberry Pi prints them:
- `throttled=0x0`: a board with nothing to report (Raspberry Pi's documentation of get_throttled).
- `throttled=0x50005`, `throttled=0x50000`, `throttled=0x80008`: quoted with their meaning by
  scripts written on the boards (e.g. slowrunner/LRP status.sh: "0x50005 means throttled now and
  under-voltage now", "0x50000 means throttling occurred, under-voltage occurred", "0x80008 means
  soft temperature limit exceeded (no throttling yet)").
- `VCHI initialization failed`: vcgencmd run by a user without access to /dev/vchiq; the fix
  found wherever it is quoted is the video group. Scripts written for the boards note that
  vcgencmd may exit 0 with it, so both exit codes are tried.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from devkit.board import check_power
from devkit.findings import FAIL, OK, SKIP, WARN

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("output", "status", "words"),
    [
        ("throttled=0x0\n", OK, "no under-voltage"),
        ("throttled=0x50005\n", FAIL, "under-voltage, throttled now"),
        ("throttled=0x50000\n", WARN, "under-voltage, throttled since the board started"),
        ("throttled=0x80008\n", WARN, "the soft temperature limit now"),
    ],
)
def test_the_boards_report_is_named(output, status, words):
    found = check_power((output.strip(), 0))
    assert (found.status, found.name) == (status, "board power")
    assert words in found.detail and output.strip() in found.detail
    assert (status == OK) == (found.fix == "")


@pytest.mark.parametrize("code", [0, 255])
def test_no_access_to_the_firmware_is_a_skip_with_the_fix(code):
    found = check_power(("VCHI initialization failed", code))
    assert found.status == SKIP and "VCHI initialization failed" in found.detail
    assert "video group" in found.fix
    garbled = check_power(("something else", 0))
    assert garbled.status == SKIP and "something else" in garbled.detail


def test_a_machine_without_vcgencmd_says_nothing_and_doctor_runs(tmp_path):
    """This machine has no vcgencmd: no check, no error. With one on the PATH (printing a
    recorded answer), doctor shows the board's line."""
    assert check_power() is None
    stand_in = tmp_path / "vcgencmd"
    stand_in.write_text("#!/bin/sh\necho throttled=0x50000\n")
    stand_in.chmod(0o755)
    code = "from devkit.board import check_power; c = check_power(); print(c.status, c.detail)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
        capture_output=True, text=True, check=False, cwd=Path(__file__).parents[2],
    )  # fmt: skip
    assert done.stdout.startswith("WARN under-voltage"), done.stdout + done.stderr
