"""The product's checks of a scheduled backup (devkit/checks/scheduled_backup.py); on the
session's workstation stack they skip (it has no schedule), the fleet tests run them on servers."""

from devkit.checks.scheduled_backup import *  # noqa: F403
