"""Redis's data as one RDB file: copied out of the stack's container before a reset, and put
back as the server's append-only data (redis.restore).

The server runs with `appendonly yes`, and Redis 7 then starts from its append-only directory
only, never from a lone dump.rdb (with no such directory it starts empty). So a restore writes
the RDB file as the base of a new append-only directory, with the manifest that names it
(Redis 7's multi-part AOF: `file appendonly.aof.1.base.rdb seq 1 type b`). The directory it
replaces is moved aside, not deleted.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from devkit.backup.files import written_backup
from devkit.compose import docker_failure
from devkit.envfile import Stack, subprocess_environ
from devkit.errors import DevkitError
from devkit.shells import container_of, exec_argv

MAGIC = b"REDIS"


class RedisDataError(DevkitError):
    """Redis's data could not be saved or put back."""


def _auth_env(stack: Stack) -> dict[str, str]:
    return subprocess_environ() | {"REDISCLI_AUTH": stack.redis_password}


def snapshot(stack: Stack, directory: Path) -> Path:
    """SAVE, then the server's dump.rdb copied to redis_YYYYMMDD_HHMMSS.rdb (0600, atomic)."""
    container = container_of(stack, "redis")
    saved = subprocess.run(
        exec_argv(
            container,
            ["redis-cli", "--no-auth-warning", "SAVE"],
            secrets=("REDISCLI_AUTH",),
            stdin=False,
            tty=False,
        ),
        capture_output=True,
        text=True,
        env=_auth_env(stack),
        check=False,
    )
    if saved.returncode != 0 or saved.stdout.strip() != "OK":
        raise RedisDataError(
            f"redis did not save its data: {(saved.stdout + saved.stderr).strip()[:200]}",
            "is the stack up (`devkit up`)? `devkit doctor` diagnoses",
        )
    with written_backup(directory, datetime.now(UTC), ".rdb", prefix="redis") as (new, out):
        copied = subprocess.run(
            ["docker", "exec", container, "cat", "/data/dump.rdb"],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
        if copied.returncode != 0:
            raise docker_failure(copied.stderr.decode(errors="replace"))
        out.flush()
        check_rdb(new.partial)
    return new.path


def check_rdb(path: Path) -> None:
    try:
        with path.open("rb") as f:
            head = f.read(9)
    except OSError as exc:
        raise RedisDataError(f"cannot read {path}: {exc.strerror}", "check the path") from None
    if not head.startswith(MAGIC) or not head[5:9].isdigit():
        raise RedisDataError(
            f"{path.name} is not a Redis RDB file", "use a redis_*.rdb file the kit wrote"
        )


# Run as root in a throwaway container of the stack's Redis image, on the stopped server's volume;
# the RDB file arrives on standard input.
_PUT_BACK = """
set -e
cd /data
if [ -e appendonlydir ]; then mv appendonlydir "$1"; fi
mkdir appendonlydir
cat > appendonlydir/appendonly.aof.1.base.rdb
printf 'file appendonly.aof.1.base.rdb seq 1 type b\\n' > appendonlydir/appendonly.aof.manifest
chown -R redis:redis appendonlydir
chmod 0700 appendonlydir
"""


def restore(stack: Stack, path: Path) -> str:
    """Replace Redis's data with the RDB file's; the data it had is moved aside in the volume
    (its name is returned). The server is stopped meanwhile and started again."""
    from devkit.compose import run_compose
    from devkit.lifecycle import up

    check_rdb(path)
    aside = f"appendonlydir.before-restore-{datetime.now(UTC):%Y%m%d_%H%M%S}"
    run_compose(stack.env_file, "stop", "redis")
    with path.open("rb") as rdb:
        put = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "-i",
                "--user",
                "0",
                "-v",
                f"{stack.project}_redis-data:/data",
                "--entrypoint",
                "sh",
                stack.image("redis"),
                "-c",
                _PUT_BACK,
                "put-back",
                aside,
            ],
            stdin=rdb,
            capture_output=True,
            text=False,
            check=False,
        )
    if put.returncode != 0:
        up(stack)
        raise RedisDataError(
            f"could not put {path.name} in place: {put.stderr.decode(errors='replace').strip()[:200]}",
            "Redis was started again with the data it had",
        )
    up(stack)
    return aside
