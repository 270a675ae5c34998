"""Default settings (validated by devkit.settings.Settings); plain data for fast start."""

from typing import Any

DEFAULTS: dict[str, Any] = {
    # Compose project name: containers, network and volumes are named after it.
    "project_name": "devkit",
    # Where the app's .env.local is written; empty: the last `setup --app-dir`, else the kit's
    # sample app (examples/sample_app).
    "app_dir": "",
    # Address the ports are published on. Loopback unless opened explicitly.
    "bind_address": "127.0.0.1",
    "postgres_port": 5432,
    "postgres_user": "app",
    "postgres_db": "app_db",
    "redis_port": 6379,
    # auto: official image if present or pullable, else an offline build; registry; local.
    "images_source": "auto",
    # Seconds `up` and `setup` wait for authenticated connections.
    "ready_timeout": 90,
    # Where db.backup writes; empty: <app dir>/backups.
    "backup_dir": "",
    # db.prune keeps backups this many days (BACKUP_RETENTION_DAYS in the environment wins).
    "backup_retention_days": 7,
    # What reading one backup file may hold in memory, in MiB: one line of the kit's files (a
    # row), and a whole file of the seed's tool (read at once, about 8x its size as objects).
    # A larger one is refused with the setting to raise.
    "backup_max_line_mb": 8,
    "backup_max_document_mb": 8,
    # S3 (or any S3-compatible store: MinIO, R2, ...) for db.upload and friends. Credentials and,
    # when these are empty, region and endpoint come from the usual AWS variables and files.
    "s3_bucket": "",
    "s3_prefix": "backups/",
    "s3_endpoint_url": "",
    "s3_region": "",
    # VS Code hooks (setup, vscode.install): linux for VS Code inside Linux/WSL, windows for VS
    # Code on Windows (its tasks enter WSL through wsl.exe); the WSL distribution they enter
    # (empty: the current one, WSL_DISTRO_NAME, else Ubuntu); start the services on folder open.
    "vscode_host": "linux",
    "vscode_wsl_distro": "",
    "vscode_auto_start": False,
}
