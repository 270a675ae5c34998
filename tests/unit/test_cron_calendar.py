"""BACKUP_CRON's five fields as systemd OnCalendar= (backup_schedule's timer variant); every
result is parsed by this machine's own `systemd-analyze calendar`."""

import importlib.util
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

_spec = importlib.util.spec_from_file_location(
    "cron_calendar",
    Path(__file__).parents[2] / "roles/backup_schedule/filter_plugins/cron_calendar.py",
)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
cron_to_oncalendar = _module.cron_to_oncalendar


@pytest.mark.parametrize(
    ("cron", "calendar"),
    [
        ("0 3 * * *", "*-*-* 03:00:00"),
        ("15 2 * * 1-5", "Mon..Fri *-*-* 02:15:00"),
        ("*/15 * * * *", "*-*-* *:00/15:00"),
        ("0 */6 * * *", "*-*-* 00/6:00:00"),
        ("30 1 1,15 * *", "*-*-01,15 01:30:00"),
        ("0 4 * * 0", "Sun *-*-* 04:00:00"),
        ("0 4 * * 7", "Sun *-*-* 04:00:00"),
        ("0 4 * * 1,3,5", "Mon,Wed,Fri *-*-* 04:00:00"),
        ("5 0 * 1-3 *", "*-01..03-* 00:05:00"),
        ("0 0-6/2 * * *", "*-*-* 00..06/2:00:00"),
    ],
)
def test_cron_fields_become_a_calendar_systemd_accepts(cron, calendar):
    assert cron_to_oncalendar(cron) == calendar
    parsed = subprocess.run(
        ["systemd-analyze", "calendar", calendar], capture_output=True, text=True, check=False
    )
    assert parsed.returncode == 0, parsed.stderr
    assert f"Normalized form: {calendar}" in parsed.stdout


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("0 3 * *", "five cron fields"),
        ("0 3 1 * 1", "not both"),  # cron: the 1st OR a Monday; systemd would need both
        ("0 3 * * */2", "steps in the weekday"),
        ("0 3 * * 8", "out of range"),
        ("@daily x y z w", "unsupported"),
        ("0 3 * * MON", "unsupported"),
    ],
)
def test_what_has_no_equal_meaning_is_refused(cron, reason):
    with pytest.raises(ValueError, match=reason):
        cron_to_oncalendar(cron)
