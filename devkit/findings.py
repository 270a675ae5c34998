"""What a check finds (doctor's, devkit/diagnosis.py and devkit/diagnosis_wsl.py): its status,
what it saw, and the fix."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARN, FAIL, SKIP = "OK", "WARN", "FAIL", "SKIP"


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
