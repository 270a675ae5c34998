"""The product's checks of a workstation (devkit/checks/workstation.py), against the session's
stack (the `deployment` fixture of devkit/checks/plugin.py)."""

from devkit.checks.workstation import *  # noqa: F403
