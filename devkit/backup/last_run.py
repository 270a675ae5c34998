"""The scheduled backup's last run on a server, as its job leaves it for `devkit status`,
`devkit verify` and a monitoring system: one line in /var/lib/devkit/backup-<project>.status,
`ok|failed <ISO time> <exit code>`, written when the job ends (roles/backup_schedule's script,
whose path comes from here through the role's filter). A systemd host also has the unit's
failed state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

STATUS_DIR = Path("/var/lib/devkit")


def status_file(project: str) -> Path:
    return STATUS_DIR / f"backup-{project}.status"


def log_file(project: str) -> Path:
    """Where the job's output goes unless the inventory moves it (the role's backup_schedule_log
    defaults to it)."""
    return Path(f"/var/log/devkit-backup-{project}.log")


@dataclass(frozen=True)
class LastRun:
    ok: bool
    at: datetime
    code: int


def parse(text: str) -> LastRun | None:
    """The status line; None for an empty or unreadable one (the job has not run yet)."""
    try:
        state, when, code = text.split()
        return LastRun(state == "ok", datetime.fromisoformat(when), int(code))
    except ValueError:
        return None


def age(run: LastRun, now: datetime | None = None) -> str:
    seconds = ((now or datetime.now(UTC)) - run.at).total_seconds()
    if seconds < 3600:
        return f"{max(seconds, 0) / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def describe(project: str, now: datetime | None = None) -> str:
    """One line for `devkit status` on a server; "" where no job ran (no status file)."""
    try:
        run = parse(status_file(project).read_text())
    except OSError:
        return ""
    if run is None:
        return "scheduled backup: not run yet"
    when = f"{age(run, now)} ({run.at.isoformat(timespec='minutes')})"
    if run.ok:
        return f"scheduled backup: last run ok, {when}"
    return (
        f"scheduled backup: last run FAILED (exit {run.code}), {when}: its log says why "
        f"({log_file(project)} unless the inventory moved it)"
    )
