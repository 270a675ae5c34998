"""Invoke task modules, one per namespace, and the namespace they make: `devkit` (devkit.cli)
and `invoke` in the kit's directory (tasks.py) run the same one."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from invoke import Collection


def defaults() -> dict:
    """The `devkit` config section before any file or variable: the settings' defaults, and the
    app the working directory is in (devkit.app)."""
    from devkit.app import app_of_directory
    from devkit.settings.table import DEFAULTS

    here = app_of_directory()
    return {**DEFAULTS, "app_dir": str(here) if here else ""}


def namespace() -> Collection:
    """Every task, with the settings' defaults as config (`devkit.<setting>`). The app directory
    defaults to the app the working directory is in (devkit.app): the settings and the
    environment (INVOKE_DEVKIT_APP_DIR) still win."""
    from devkit.tasks import (
        apps,
        branches,
        db,
        doctor,
        fleet,
        images,
        redis,
        stack,
        testing,
        vscode,
    )
    from devkit.tasks._cli import quiet_on_closed_pipe

    ns = stack.ns
    ns.add_task(apps.apps)
    ns.add_task(testing.test)
    ns.add_task(doctor.doctor)
    ns.add_task(fleet.provision)
    ns.add_task(fleet.verify)
    ns.add_collection(images.ns)
    ns.add_collection(db.ns)
    ns.add_collection(redis.ns)
    ns.add_collection(branches.ns)
    ns.add_collection(vscode.ns)
    ns.configure({"devkit": defaults()})
    quiet_on_closed_pipe()
    return ns
