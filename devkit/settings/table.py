"""Every setting of the kit, once: its default, what it is, the key that records it in
.env.local, whether servers take it from their inventory (devkit_<name>), and the role variables
that stand for it (their defaults must agree: tests/unit/test_settings.py checks them).

Users override settings in invoke.yaml (`devkit: {postgres_port: 5433}`) or the environment
(`INVOKE_DEVKIT_POSTGRES_PORT=5433`); servers in their inventory (`devkit_postgres_port: 5433`).
Validation (types, ranges, patterns, choices below; rules between settings) is
devkit.settings.model's, applied where settings are used: setup, images.build, provision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devkit.services import SERVICES
from devkit.wal_level import LEVELS

PORT_OR_PICK = {"ge": 0, "le": 65535}
IDENTIFIER = r"^[a-z_][a-z0-9_]{0,62}$"
# A WSL distribution's name as `wsl -d NAME` takes it: it is an argument of wsl.exe, so it never
# starts with "-" (an option). Empty: the current distribution, else Ubuntu.
DISTRO_PATTERN = r"^([A-Za-z0-9][A-Za-z0-9._-]{0,63})?$"
MEBIBYTES = {"ge": 1, "le": 65536}


@dataclass(frozen=True)
class Setting:
    default: Any
    # Constraints as pydantic's Field takes them (ge, le, gt, pattern), and the allowed values.
    limits: dict[str, Any] = field(default_factory=dict)
    choices: tuple[str, ...] = ()
    # The .env.local key recording the value setup applied (drift is found against it).
    env_key: str = ""
    # Servers take it from their inventory, as devkit_<name>.
    server: bool = False
    # Role variables that stand for this setting (a role used on its own has the same default).
    role_vars: tuple[str, ...] = ()
    # Chosen per app at its first setup when not set (the default is then "" or 0), and kept in
    # its .env.local from then on: a server takes `server_default` instead.
    per_app: bool = False
    server_default: Any = None
    # Names where backups are copied to (devkit/destinations); a server's scheduled backup
    # gets it (roles/backup_schedule: its destination file).
    destination: bool = False
    # env_key came after a release: a file an earlier kit wrote may lack it, and compose.yaml
    # runs the services as before without it (`${KEY:-value}`). Everyday tasks go on with such a
    # file; the next setup writes the key.
    key_may_be_missing: bool = False


SETTINGS: dict[str, Setting] = {
    # Compose project name: containers, network and volumes are named after it. Empty: a new
    # app's is its directory's name and a short hash of its path (devkit.stacks.project_for).
    "project_name": Setting(
        "",
        {"pattern": r"^([a-z0-9][a-z0-9_-]{0,62})?$"},
        env_key="DEVKIT_PROJECT_NAME",
        server=True,
        role_vars=("backup_schedule_name",),
        per_app=True,
        server_default="devkit",
    ),
    # The app's directory, where its .env.local is written; empty: the app the working directory
    # is in (devkit.app), else the last one set up, else the kit's sample app
    # (examples/sample_app). Servers: an absolute path on the server.
    "app_dir": Setting("", server=True),
    # Address the ports are published on. Loopback unless opened explicitly.
    "bind_address": Setting("127.0.0.1", env_key="DEVKIT_BIND_ADDRESS", server=True),
    # Each service's port (devkit.services: postgres_port, redis_port). 0: a new app takes the
    # preferred ones (5432, 6379) when free, else the next free set (devkit.stacks).
    **{
        service.port_setting: Setting(
            0,
            PORT_OR_PICK,
            env_key=service.port_key,
            server=True,
            per_app=True,
            server_default=service.preferred_port,
        )
        for service in SERVICES.values()
    },
    "postgres_user": Setting("app", {"pattern": IDENTIFIER}, env_key="PGUSER", server=True),
    # PostgreSQL's wal_level. minimal on a workstation: a load into tables it has emptied in
    # its transaction (db.restore, db.pull) writes the rows once, into the tables, not a second
    # time into the WAL; as crash-safe (the tables' files are synced at COMMIT), but nothing can
    # replicate from it. replica on a server (and for pg_basebackup from a workstation); logical
    # for logical replication (Debezium, a subscriber).
    "postgres_wal_level": Setting(
        "minimal",
        choices=LEVELS,
        env_key="DEVKIT_PG_WAL_LEVEL",
        server=True,
        server_default="replica",
        key_may_be_missing=True,
    ),
    "postgres_db": Setting("app_db", {"pattern": IDENTIFIER}, env_key="PGDATABASE", server=True),
    # auto: official image if present or pullable, else an offline build; registry; local.
    # (Servers choose with devkit_images_source, which also has `controller`.)
    "images_source": Setting(
        "auto", choices=("auto", "registry", "local"), role_vars=("images_source",)
    ),
    # Seconds `up` and `setup` wait for authenticated connections.
    "ready_timeout": Setting(90.0, {"gt": 0, "le": 3600}),
    # Where db.backup writes; empty: <app dir>/backups.
    "backup_dir": Setting(""),
    # db.prune keeps backups this many days (BACKUP_RETENTION_DAYS in the environment wins).
    "backup_retention_days": Setting(
        7, {"ge": 1, "le": 36500}, server=True, role_vars=("backup_schedule_retention_days",)
    ),
    # Automatic snapshots kept per app: db.migrate, db.downgrade and db.reset take one before they
    # change the database (devkit/safety_net.py), and db.snapshot.restore keeps what it replaces
    # as one; the older ones are dropped as a new one is taken, each named. 0: none is dropped,
    # and db.migrate, db.downgrade and db.restore keep a backup file instead. Servers: 0 unless
    # their inventory sets devkit_snapshot_keep (a snapshot closes the database for the time of
    # its copy: minutes for a large production database).
    "snapshot_keep": Setting(5, {"ge": 0, "le": 1000}, server=True, server_default=0),
    # A ready copy of each snapshot taken by hand and of each one restored, made in the
    # background, so that its restore is two renames (devkit/snapshot_spares.py); it takes the
    # disk of a second copy. false: a restore copies the snapshot first, as it waits.
    "snapshot_spares": Setting(True),
    # The app's database follows its git branch (devkit/branches.py): each branch has one of its
    # own, swapped in on checkout. branch_base: the branch whose database a new branch's is copied
    # from, or a snapshot (db.pull's pulled-ENV) (empty: the branch checked out before).
    # branch_keep: how many other branches' databases are kept; beyond it the least recently used
    # are dropped, never the base's (main and master when branch_base is empty); 0: no limit.
    "branch_databases": Setting(True),
    "branch_base": Setting("", {"pattern": r"^[^\x00-\x20\x7f~^:?*\[\\]{0,200}$"}),
    "branch_keep": Setting(10, {"ge": 0, "le": 1000}),
    # ... and how much they may take together, in MiB (0: no limit).
    "branch_max_mb": Setting(0, {"ge": 0, "le": 16 * 2**20}),
    # The memory the stack is sized for, in MiB (devkit/memory.py: PostgreSQL's buffers, Redis's
    # ceiling); 0: the machine's own (MemTotal). Below 700 a server is refused.
    "memory_mb": Setting(0, {"ge": 0, "le": 16 * 2**20}, server=True),
    # provision: the time limit of one step on a server, in seconds (the images' transfer or
    # build: 4 times as long). A step over it fails its host with `Timed out after N second(s)`
    # while the others go on (playbooks/site.yml). setup on a workstation has none.
    "step_timeout": Setting(900, {"ge": 10, "le": 86400}, server=True),
    # What reading one backup file may hold in memory, in MiB: one line of the kit's files (a
    # row), and a whole file of the earlier backup script (read at once, about 8x its size as objects).
    # A larger one is refused with the setting to raise.
    "backup_max_line_mb": Setting(8, MEBIBYTES),
    "backup_max_document_mb": Setting(8, MEBIBYTES),
    # Where db.upload and friends copy backups to (devkit/destinations): `s3` (the s3_* settings
    # below), or an absolute directory (a NAS share, a second disk, mounted here); empty: S3 when
    # s3_bucket is set.
    "backup_destination": Setting(
        "", {"pattern": r"^(s3|/[^\x00-\x1f]*)?$"}, server=True, destination=True
    ),
    # S3 (or any S3-compatible store: MinIO, R2, ...). Credentials and, when these are empty,
    # region and endpoint come from the usual AWS variables and files.
    "s3_bucket": Setting(
        "",
        # S3's naming rules, with the legacy names us-east-1 still holds (capitals, _).
        {"pattern": r"^([A-Za-z0-9][A-Za-z0-9._-]{1,253}[A-Za-z0-9])?$"},
        server=True,
        destination=True,
    ),
    "s3_prefix": Setting("backups/", server=True, destination=True),
    "s3_endpoint_url": Setting(
        "", {"pattern": r"^(https?://\S+)?$"}, server=True, destination=True
    ),
    "s3_region": Setting("", {"pattern": r"^[a-z0-9-]*$"}, server=True, destination=True),
    # A company network: the proxy for HTTP and for HTTPS (http://host:port; empty: HTTP_PROXY
    # and HTTPS_PROXY from the environment), the hosts reached without it (empty: NO_PROXY), and
    # a CA bundle in PEM that the proxy's certificates chain to (empty: DEVKIT_CA_FILE). setup
    # and provision carry them into apt, pip, the Docker daemon, image builds (roles/network).
    "http_proxy": Setting("", server=True),
    "https_proxy": Setting("", server=True),
    "no_proxy": Setting("", server=True),
    "ca_file": Setting("", server=True),
    # VS Code hooks (setup, vscode.install): both (the Linux tasks, for VS Code inside Linux or
    # Remote - WSL, with their "windows" override, for VS Code on Windows, whose tasks enter WSL
    # through wsl.exe), or linux or windows alone; the WSL distribution they enter (empty: the
    # current one, WSL_DISTRO_NAME, else Ubuntu); start the services on folder open.
    "vscode_host": Setting(
        "both", choices=("both", "linux", "windows"), role_vars=("vscode_host",)
    ),
    "vscode_wsl_distro": Setting("", {"pattern": DISTRO_PATTERN}),
    "vscode_auto_start": Setting(False, role_vars=("vscode_auto_start",)),
}

DEFAULTS: dict[str, Any] = {name: setting.default for name, setting in SETTINGS.items()}
# Settings recorded in .env.local as they are, and the key that records each.
RECORDED: dict[str, str] = {
    name: setting.env_key for name, setting in SETTINGS.items() if setting.env_key
}
# The settings a server takes from its inventory (devkit_<name>), and their defaults there.
SERVER_SETTINGS: tuple[str, ...] = tuple(name for name, s in SETTINGS.items() if s.server)
SERVER_DEFAULTS: dict[str, Any] = {
    name: SETTINGS[name].default
    if SETTINGS[name].server_default is None
    else SETTINGS[name].server_default
    for name in SERVER_SETTINGS
}
# The settings naming the backup destination (devkit/destinations).
DESTINATION: tuple[str, ...] = tuple(name for name, s in SETTINGS.items() if s.destination)
# Settings chosen per app when not set ("" or 0).
PER_APP: tuple[str, ...] = tuple(name for name, s in SETTINGS.items() if s.per_app)


def check_known(config: dict[str, Any]) -> None:
    """SettingsError for a key of the `devkit` section that is no setting (a misspelt one in
    invoke.yaml would otherwise be ignored, its default used)."""
    unknown = sorted(set(config) - set(SETTINGS))
    if unknown:
        import difflib

        from devkit.errors import SettingsError

        name = unknown[0]
        close = difflib.get_close_matches(name, SETTINGS, n=1)
        raise SettingsError(
            f"devkit.{name} is no setting of the kit (set in invoke.yaml or as "
            f"INVOKE_DEVKIT_{name.upper()})",
            (f"did you mean devkit.{close[0]}? " if close else "")
            + "README's Settings table lists them",
        )
