"""The scheduled backup's last run as its job leaves it (devkit/backup/last_run.py): the line
the role's script writes (`date -Iseconds`), read back for status and verify."""

from datetime import UTC, datetime

import pytest

from devkit.backup.last_run import age, parse

pytestmark = pytest.mark.unit


def test_the_jobs_line_is_read_back():
    run = parse("failed 2026-12-05T03:00:01+00:00 1\n")
    assert run is not None and not run.ok and run.code == 1
    assert run.at == datetime(2026, 12, 5, 3, 0, 1, tzinfo=UTC)
    assert parse("ok 2026-12-05T03:00:01+00:00 0").ok
    assert parse("") is None and parse("garbage") is None


def test_its_age_is_said_in_the_largest_unit_that_fits():
    run = parse("ok 2026-12-05T03:00:00+00:00 0")
    assert age(run, datetime(2026, 12, 5, 3, 20, tzinfo=UTC)) == "20 min ago"
    assert age(run, datetime(2026, 12, 5, 9, 0, tzinfo=UTC)) == "6 h ago"
    assert age(run, datetime(2026, 12, 9, 3, 0, tzinfo=UTC)) == "4 days ago"
