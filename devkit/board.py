"""What a Raspberry Pi's firmware says about its power and temperature (`vcgencmd get_throttled`),
for doctor on a server that is one. Elsewhere there is no vcgencmd and nothing is said.

The value is a bit mask: the low 16 bits are the state now, the high 16 bits what has happened
since the board started (Linux's include/soc/bcm2835/raspberrypi-firmware.h, commit be3035e3627d
"ARM: bcm2835: Add GET_THROTTLED firmware property"; bits 3 and 19, the soft temperature limit,
from Raspberry Pi's documentation of get_throttled). It prints as `throttled=0x50005`.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from devkit.findings import FAIL, OK, SKIP, WARN, Check

STATES = {
    0: "under-voltage",
    1: "the ARM frequency capped",
    2: "throttled",
    3: "the soft temperature limit",
}
SINCE_BOOT = 16  # the same four, as "has occurred since the board started"


def decode(output: str) -> tuple[list[str], list[str]]:
    """(what holds now, what has happened since boot) from vcgencmd get_throttled's output;
    ValueError when it is not that output."""
    found = re.fullmatch(r"\s*throttled=(0x[0-9a-fA-F]+|\d+)\s*", output)
    if not found:
        raise ValueError(f"not get_throttled's output: {output.strip()[:80]!r}")
    mask = int(found[1], 0)
    now = [text for bit, text in STATES.items() if mask >> bit & 1]
    since = [text for bit, text in STATES.items() if mask >> (bit + SINCE_BOOT) & 1]
    return now, since


def get_throttled(timeout: float = 5) -> tuple[str, int] | None:
    """vcgencmd get_throttled's output and exit code, None where there is no vcgencmd."""
    command = shutil.which("vcgencmd")
    if command is None:
        return None
    try:
        done = subprocess.run(
            [command, "get_throttled"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc), 1
    return (done.stdout or done.stderr).strip(), done.returncode


def check_power(reported: tuple[str, int] | None = None) -> Check | None:
    """A Raspberry Pi's power and temperature, as its firmware reports them (above): FAIL
    while under-voltage, WARN while throttled or when either happened since boot; None
    on a machine without vcgencmd. REPORTED: get_throttled's output and exit code (tests)."""
    reported = reported or get_throttled()
    if reported is None:
        return None
    output, code = reported
    try:
        if code != 0:
            raise ValueError(output.splitlines()[0] if output else f"exit code {code}")
        now, since = decode(output)
    except ValueError as exc:
        return Check(
            "board power", SKIP, f"vcgencmd get_throttled gave no answer ({exc})",
            "run doctor as root, or add its user to the video group (sudo usermod -aG video USER)",
        )  # fmt: skip
    fix = (
        "give the board a power supply of its rated current and a short cable (under-voltage), "
        "and cooling (temperature); a throttled server answers slowly and an under-powered one "
        "can corrupt its SD card"
    )
    if now:  # under-voltage can corrupt the SD card: a failure; the rest slows the server
        status = FAIL if STATES[0] in now else WARN
        return Check("board power", status, f"{', '.join(now)} now ({output})", fix)
    if since:
        return Check(
            "board power", WARN, f"{', '.join(since)} since the board started ({output})", fix
        )
    return Check("board power", OK, f"no under-voltage or throttling ({output})")
