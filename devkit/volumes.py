"""Whose database a volume holds: one rule for setup (before anything runs) and for the stack
role (workstations and servers, through its volume_conflict filter)."""

from __future__ import annotations

import json
import subprocess

from devkit.errors import DataConflict

# The label compose.yaml puts on the database volume: the app directory it was created for.
OWNER_LABEL = "io.devkit.app-dir"


def owner_of(labels: dict | None) -> str:
    """The app directory a database volume's labels name; "" when they name none."""
    return (labels or {}).get(OWNER_LABEL) or ""


def database_volume(project: str) -> str:
    return f"{project}_postgres-data"


def volume_conflict(
    project: str, owner: str | None, app_dir: str, had_password: bool
) -> DataConflict | None:
    """Why the project's database volume (`owner`: its label; None: no such volume) may not be
    used by the app in `app_dir`, or None.

    A database only accepts the password it was created with, which lives in the .env.local of
    the app that created it: pointing another app (or checkout) at it would write a new password
    and lock the data out. A volume without the label (an earlier kit made it) belongs to an app
    whose .env.local already holds a password.
    """
    if owner is None or owner == app_dir or (not owner and had_password):
        return None
    volume = database_volume(project)
    return DataConflict(
        f"the volume {volume} already holds the database of "
        + (f"the app in {owner}" if owner else "another setup")
        + f", not of {app_dir}",
        (f"run setup for that app (--app-dir {owner}), or " if owner else "")
        + f"choose another project (INVOKE_DEVKIT_PROJECT_NAME=...), or delete it: docker volume rm {volume} (its data is lost)",
    )


def volume_owner(project: str) -> str | None:
    """The app directory labelled on the project's database volume ("" for none); None when
    there is no such volume, or no Docker to ask yet (the stack role asks again once it runs)."""
    try:
        found = subprocess.run(
            [
                "docker",
                "volume",
                "inspect",
                "--format",
                "{{json .Labels}}",
                database_volume(project),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return None
    if found.returncode != 0:
        return None
    return owner_of(json.loads(found.stdout or "null"))
