"""Whose database a volume holds: one rule for setup (before anything runs) and for the stack
role (workstations and servers, through its volume_conflict filter); and the proof that an app
directory that was moved or renamed still owns its data."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from devkit.errors import DataConflict

# The label compose.yaml puts on the database volume (the app directory it was made for) and on
# the containers (the app directory they run for, refreshed at every start: Docker cannot
# change a volume's labels).
OWNER_LABEL = "io.devkit.app-dir"


def owner_of(labels: dict | None) -> str:
    """The app directory labels name; "" when they name none."""
    return (labels or {}).get(OWNER_LABEL) or ""


def database_volume(project: str) -> str:
    return f"{project}_postgres-data"


def database_container(project: str) -> str:
    return f"{project}-postgres-1"


def current_owner(volume_labels: dict | None, container_labels: dict | None) -> str:
    """The app directory a stack's database belongs to now: as its container says (relabelled
    when a moved app was set up), else as the volume says."""
    return owner_of(container_labels) or owner_of(volume_labels)


def volume_conflict(
    project: str, owner: str | None, app_dir: str, had_password: bool, moved_from: str = ""
) -> DataConflict | None:
    """Why the project's database volume (`owner`: current_owner; None: no such volume) may not
    be used by the app in `app_dir`, or None.

    A database only accepts the password it was created with, which lives in the .env.local of
    the app that created it: pointing another app (or checkout) at it would write a new password
    and lock the data out. A volume without the label (an earlier kit made it) belongs to an app
    whose .env.local already holds a password. `moved_from`: the owner's old directory, when
    setup proved the app moved here (moved_here).
    """
    if owner is None or owner == app_dir or (not owner and had_password):
        return None
    if moved_from and owner == moved_from:
        return None
    volume = database_volume(project)
    return DataConflict(
        f"the volume {volume} already holds the database of "
        + (f"the app in {owner}" if owner else "another setup")
        + f", not of {app_dir}",
        (f"run setup for that app (cd {owner} && devkit setup), or " if owner else "")
        + f"give this app a stack of its own (INVOKE_DEVKIT_PROJECT_NAME=...), or delete it: docker volume rm {volume} (its data is lost)",
    )


def _labels(kind: str, name: str) -> dict | None:
    """The labels of a Docker volume or container; None when there is none (or no Docker)."""
    try:
        found = subprocess.run(
            ["docker", kind, "inspect", "--format",
             "{{json .Labels}}" if kind == "volume" else "{{json .Config.Labels}}", name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
    except FileNotFoundError:
        return None
    if found.returncode != 0:
        return None
    return json.loads(found.stdout or "null") or {}


def volume_owner(project: str) -> str | None:
    """current_owner of the project's database ("" for none); None when there is no such
    volume, or no Docker to ask yet (the stack role asks again once it runs)."""
    volume = _labels("volume", database_volume(project))
    if volume is None:
        return None
    return current_owner(volume, _labels("container", database_container(project)))


def moved_here(
    project: str, owner: str, app_dir: str, values: dict[str, str], home: Path | None = None
) -> bool:
    """Whether the app in `app_dir` is the one in `owner`, moved or renamed. Fails closed: its
    .env.local (`values`) names this stack; the owner's directory is provably gone (no such
    file: one that cannot be read may still be there, another user's) or its .env.local names
    another stack; the stack was set up by this Unix user (its admin password is kept in
    `home`, default this user's); and the database accepts the password and user of `values`."""
    from devkit.admin_password import admin_env_file

    if not owner or values.get("DEVKIT_PROJECT_NAME") != project or not values.get("PGPASSWORD"):
        return False
    if original_in_place(owner, project) is not False:
        return False
    if not admin_env_file(project, home).is_file():
        return False
    return password_opens(project, values)


def original_in_place(app_dir: str, project: str) -> bool | None:
    """Whether APP_DIR's .env.local names PROJECT: True, False (provably not: no such file or
    directory, or it names another), or None when that cannot be known (it cannot be read)."""
    from devkit.dotenv import EnvFileError
    from devkit.envfile import read_env_file
    from devkit.paths import ENV_FILE_NAME

    path = Path(app_dir) / ENV_FILE_NAME
    try:
        os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return None
    try:
        return read_env_file(path).get("DEVKIT_PROJECT_NAME") == project
    except (EnvFileError, OSError):
        return None


PROOF_TIMEOUT = 60.0


def password_opens(project: str, values: dict[str, str]) -> bool:
    """Whether the project's database accepts PGUSER/PGPASSWORD of `values`: asked in its
    running container, else in a throwaway one on the volume, publishing no port (nothing else
    is started or changed). The password reaches psql through the environment only."""
    container = database_container(project)
    state = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.Running}}", container],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    if state == "true":
        return _query_accepted(container, values)
    image = values.get("DEVKIT_POSTGRES_IMAGE", "")
    started = subprocess.run(
        ["docker", "run", "-d", "--rm", "--label", "io.devkit.proof=1",
         "-v", f"{database_volume(project)}:/var/lib/postgresql/data", image],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if started.returncode != 0:
        return False
    proof = started.stdout.strip()
    try:
        deadline = time.monotonic() + PROOF_TIMEOUT
        while time.monotonic() < deadline:
            ready = subprocess.run(
                ["docker", "exec", proof, "sh", "-c", 'pg_isready -q -h "$(hostname -i | cut -d" " -f1)"'],
                capture_output=True, check=False,
            )  # fmt: skip
            if ready.returncode == 0:
                return _query_accepted(proof, values)
            time.sleep(0.3)
        return False
    finally:
        subprocess.run(["docker", "rm", "-f", proof], capture_output=True, check=False)


def _query_accepted(container: str, values: dict[str, str]) -> bool:
    """Asked over the container's own network address, which pg_hba.conf always makes give a
    password (loopback inside a container may be `trust`, as in the official image)."""
    asked = subprocess.run(
        ["docker", "exec", "-e", "PGPASSWORD", "-e", "PGUSER", "-e", "PGDATABASE", container,
         "sh", "-c", 'exec psql -X -q -h "$(hostname -i | cut -d" " -f1)" -c "SELECT 1"'],
        env={**os.environ, **{key: values.get(key, "") for key in ("PGPASSWORD", "PGUSER", "PGDATABASE")}},
        capture_output=True, check=False,
    )  # fmt: skip
    return asked.returncode == 0


def volume_sizes() -> dict[tuple[str, str], int]:
    """Every Compose volume's size in bytes, by (project, volume): one `docker system df`."""
    from devkit.compose import docker_client

    with docker_client() as client:
        volumes = client.df().get("Volumes") or []
    sizes = {}
    for volume in volumes:
        labels = volume.get("Labels") or {}
        if "com.docker.compose.project" in labels:
            key = (
                labels["com.docker.compose.project"],
                labels.get("com.docker.compose.volume", ""),
            )
            sizes[key] = (volume.get("UsageData") or {}).get("Size", -1)
    return sizes


def human_size(size: int) -> str:
    if size < 0:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
