"""Where the kit's own files are."""

from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_DIR = KIT_ROOT / "compose"
# The default app: sample tables (users, sessions, files) with SQLAlchemy models and Alembic
# migrations, as a backend team's app starts.
SAMPLE_APP = KIT_ROOT / "examples" / "sample_app"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
PLAYBOOKS = KIT_ROOT / "playbooks"
LOCAL_INVENTORY = KIT_ROOT / "inventories" / "local" / "hosts.yml"
ANSIBLE_CFG = KIT_ROOT / "ansible.cfg"
# The kit's own state on this machine (which app directory setup was last given).
STATE_FILE = KIT_ROOT / ".devkit" / "state.json"
ENV_FILE_NAME = ".env.local"


def remove_kit_file(path: Path, directory: Path) -> bool:
    """Delete PATH, a file the kit wrote into its own DIRECTORY; whether it was. Nothing is
    deleted that is not a regular file (a symlink is not followed, nor removed) directly in
    DIRECTORY once both are resolved: a name that came from elsewhere never reaches a file of
    the user's."""
    import os
    import stat

    try:
        inside = path.parent.resolve(strict=True) == directory.resolve(strict=True)
        if not inside or not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True
