"""Which app a task acts on (docs/ARCHITECTURE.md, "Which app, which stack").

As git finds its repository: the nearest directory, from the working directory up, whose
.env.local the kit wrote (or that has an alembic.ini, an app not set up yet). A directory set
explicitly (a task's --app-dir, devkit.app_dir in invoke.yaml, INVOKE_DEVKIT_APP_DIR) comes
first; with neither, the app the last setup was given; else the kit's sample app. A task that
acts on an app other than the working directory's says so, once, on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from devkit.paths import ENV_FILE_NAME, KIT_ROOT, SAMPLE_APP, state_file

# The key that marks an .env.local as one the kit wrote (every setup writes it).
KIT_KEY = "DEVKIT_PROJECT_NAME"
MIGRATIONS_FILE = "alembic.ini"


def kit_wrote(env_file: Path) -> bool:
    """Whether `env_file` is an .env.local the kit wrote (it records the stack's project)."""
    from devkit.dotenv import env_keys

    try:
        text = env_file.read_text(errors="replace")
    except OSError:
        return False
    try:
        return KIT_KEY in env_keys(text)
    except ValueError:  # a file Compose refuses: the task reading it names the line
        return KIT_KEY in text


def app_of_directory(start: Path | None = None) -> Path | None:
    """The app that `start` (default: the working directory) is in, or None."""
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:  # the working directory was removed
        return None
    for directory in (here, *here.parents):
        if kit_wrote(directory / ENV_FILE_NAME) or (directory / MIGRATIONS_FILE).is_file():
            return directory
    return None


def read_state() -> dict[str, Any]:
    try:
        return json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {}


def record_app_dir(app_dir: Path) -> None:
    """Remember the app `setup` acted on: tasks run outside any app act on it."""
    path = state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**read_state(), "app_dir": str(app_dir)}, indent=2) + "\n")


def _chosen(app_dir: str) -> tuple[Path, str]:
    if app_dir:
        return Path(app_dir).expanduser().resolve(), "set by INVOKE_DEVKIT_APP_DIR or invoke.yaml"
    recorded = read_state().get("app_dir")
    if recorded:
        if not Path(recorded).is_dir():
            from devkit.errors import SetupRequired

            raise SetupRequired(
                f"the app last set up, {recorded}, is gone (tasks run outside an app act on it)",
                "cd into your app and run the task there, or set one up: devkit setup --app-dir PATH",
            )
        return Path(recorded), "the last one set up"
    return SAMPLE_APP, "the kit's sample app"


_announced: set[Path] = set()


def resolve_app_dir(app_dir: str, announce: bool = True) -> Path:
    """The app directory for the setting `app_dir` (the working directory's app, or one set
    explicitly; "" for neither): it, else the remembered one, else the sample app. When it is
    not the working directory's app, says which it is on stderr (once a process)."""
    path, why = _chosen(app_dir)
    if announce and path not in _announced and app_of_directory() != path:
        _announced.add(path)
        print(f"devkit: app {path} ({why}; cd into an app to act on it)", file=sys.stderr)
    return path


def new_app_here() -> Path | None:
    """Where `setup` run with no app found makes one: the working directory, unless it is the
    kit's own, the home directory or the root (then the remembered app, or the sample app)."""
    try:
        here = Path.cwd().resolve()
    except OSError:
        return None
    home = Path(os.path.expanduser("~")).resolve()
    if here in (home, Path("/")) or here == KIT_ROOT or KIT_ROOT in here.parents:
        return None
    return here
