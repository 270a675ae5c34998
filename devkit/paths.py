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
