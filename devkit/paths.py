"""Where the kit's own files are: those in its directory (constants), and its state on this
machine, which a test (or a second, throwaway kit) redirects through the environment, as pipx's
paths do: DEVKIT_STATE_DIR (the private state: admin passwords, snapshots' Redis copies, previous
env files and VS Code files; default ~/.local/state/devkit of the user), DEVKIT_STATE_FILE (the
app setup last acted on; default .devkit/state.json in the kit) and DEVKIT_BIN_DIR (where setup
links the `devkit` command; default ~/.local/bin)."""

import os
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
# Written by the kit role on a server: the server's name in its inventory.
SERVER_MARK = KIT_ROOT / ".devkit-server"
ENV_FILE_NAME = ".env.local"


def state_file() -> Path:
    """The kit's own state on this machine (which app directory setup was last given)."""
    return Path(os.environ.get("DEVKIT_STATE_FILE") or KIT_ROOT / ".devkit" / "state.json")


def state_dir(home: Path | None = None) -> Path:
    """The kit's private state of the user whose home is HOME (this process's by default)."""
    override = os.environ.get("DEVKIT_STATE_DIR")
    return Path(override) if override else home_state_dir(home or Path.home())


def home_state_dir(home: Path) -> Path:
    """state_dir of the user whose home is HOME on another machine (a server provision writes
    to): no override of this process's applies."""
    return home / ".local" / "state" / "devkit"


def read_record(path: Path) -> dict:
    """A JSON record the kit keeps in its state directory; {} when absent or unreadable."""
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_record(path: Path, data: dict) -> None:
    """Replace a JSON record in the kit's state directory in one step (0600 from its first byte,
    its directory 0700; a killed write leaves the previous record)."""
    import json
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".partial") as f:
        json.dump(data, f)
    os.replace(f.name, path)


def bin_dir(home: Path | None = None) -> Path:
    """Where setup puts the `devkit` command for the user whose home is HOME."""
    override = os.environ.get("DEVKIT_BIN_DIR")
    return Path(override) if override else (home or Path.home()) / ".local" / "bin"


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


def server_name() -> str:
    """The server this kit was provisioned on as (its inventory name), "" on a workstation."""
    try:
        return SERVER_MARK.read_text().strip()
    except OSError:
        return ""
