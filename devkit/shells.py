"""Clients inside the stack's containers: psql and redis-cli, interactive or one-shot.

They run with `docker exec`, so the host needs neither client and their versions match the
servers. Passwords reach the container through the environment (`-e NAME` without a value:
Docker copies it from the CLI's environment), never through the command line.
"""

from __future__ import annotations

import subprocess
import sys

from devkit.compose import docker_failure
from devkit.envfile import Stack, subprocess_environ
from devkit.errors import DevkitError
from devkit.services import SERVICES

# `docker exec -t` gives the terminal its size just after the client starts. A client started
# before that sees 0 columns: redis-cli's line editor then asks the terminal where the cursor is
# (ESC[6n) and takes the next keys typed as the answer, and psql's rlwrap gives up. So the shell
# waits for the size (0.5 s at most) before it starts the client.
_WAIT_FOR_SIZE = (
    "for _ in 1 2 3 4 5 6 7 8 9 10; do "
    'cols=$(stty size 2>/dev/null | cut -d" " -f2); [ "${cols:-0}" -gt 0 ] && break; sleep 0.05; '
    "done; "
)
# Line editing and history where the client lacks readline (the offline PostgreSQL build's
# psql): rlwrap when the image has it and the terminal has a width, the bare client otherwise.
_WITH_RLWRAP = (
    _WAIT_FOR_SIZE
    + 'if [ "${cols:-0}" -gt 0 ] && command -v rlwrap >/dev/null 2>&1; then exec rlwrap "$@"; fi; '
    'exec "$@"'
)
_SIZED = _WAIT_FOR_SIZE + 'exec "$@"'


def container_of(stack: Stack, service: str) -> str:
    return f"{stack.project}-{service}-1"


def exec_argv(
    container: str,
    command: list[str],
    *,
    secrets: tuple[str, ...] = (),
    stdin: bool,
    tty: bool,
    user: str = "",
) -> list[str]:
    flags = (["-i"] if stdin else []) + (["-t"] if tty else []) + (["-u", user] if user else [])
    for name in secrets:
        flags += ["-e", name]
    return ["docker", "exec", *flags, container, *command]


def require_running(stack: Stack, service: str) -> None:
    """DevkitError with the fix when the service's container is not running."""
    container = container_of(stack, service)
    found = subprocess.run(
        ["docker", "inspect", "--format", "{{.State.Running}}", container],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        if "No such object" in found.stderr or "No such container" in found.stderr:
            raise DevkitError(
                f"{service} has no container ({container})", "start the stack: devkit up"
            )
        raise docker_failure(found.stderr)
    if found.stdout.strip() != "true":
        raise DevkitError(f"{service} is not running ({container})", "start the stack: devkit up")


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


# psql's exit codes when a statement of a script (-f, stdin) fails under ON_ERROR_STOP, and
# when it cannot connect.
PSQL_SCRIPT_ERROR = 3
PSQL_CONNECTION_FAILED = 2


def psql_argv(stack: Stack, sql: str | list[str] | None) -> list[str]:
    """psql's command line: a session (SQL None), or each command of SQL in turn (`-c` each)."""
    commands = [sql] if isinstance(sql, str) else list(sql or [])
    tty = not commands and _interactive()
    command = [
        "psql", "-h", "127.0.0.1", "-U", stack.pg_user, "-d", stack.pg_database,
        "-v", "ON_ERROR_STOP=1",
        *(arg for one in commands for arg in ("-c", one)),
    ]  # fmt: skip
    if tty:
        command = ["sh", "-c", _WITH_RLWRAP, "psql-shell", *command]
    return exec_argv(
        container_of(stack, "postgres"),
        command,
        secrets=(_secret("postgres"),),
        stdin=True,
        tty=tty,
    )


def redis_cli_argv(stack: Stack, args: list[str], service: str = "redis") -> list[str]:
    tty = not args and _interactive()
    command = ["redis-cli", "--no-auth-warning", *args]
    if tty:
        command = ["sh", "-c", _SIZED, "redis-cli-shell", *command]
    return exec_argv(
        container_of(stack, service), command, secrets=(_secret(service),), stdin=True, tty=tty
    )


def _secret(service: str) -> str:
    return SERVICES[service].spec.login_secret


def run(stack: Stack, service: str, argv: list[str]) -> int:
    """Run `service`'s client (argv) with the terminal and pipes of the caller; its exit code."""
    require_running(stack, service)
    env = subprocess_environ() | {_secret(service): stack.passwords[service]}
    try:
        return subprocess.run(argv, env=env, check=False).returncode
    except KeyboardInterrupt:
        return 130
