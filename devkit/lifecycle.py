"""The stack's daily verbs: up, down, restart, logs, status."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from devkit.compose import (
    finish_compose,
    run_compose,
    start_compose,
    start_compose_project,
    stream_compose,
    wait_for_starting_daemon,
)
from devkit.envfile import Stack
from devkit.errors import DaemonDown, SettingsError
from devkit.ports import check_ports, published_ports
from devkit.services import NAMES


def check_service(service: str | None) -> None:
    if service is not None and service not in NAMES:
        raise SettingsError(f"unknown service {service!r}", f"choose one of: {', '.join(NAMES)}")


@dataclass(frozen=True)
class UpResult:
    versions: dict[str, str]
    seconds: float


UP_ARGS = ("up", "--detach", "--pull", "never")
# A `docker compose up` started before the task ran (devkit.cli.start_up_early): env file, run.
_started_early: tuple[Path, subprocess.Popen[str], float] | None = None


def start_up(config) -> None:
    """The checks before `up` changes anything (.env.local, drift, the ports), then `docker
    compose up` started and kept for the `up` task of this process to take over (devkit.cli)."""
    from devkit.envfile import load_stack

    global _started_early
    started = time.monotonic()
    stack = load_stack(config)
    _started_early = (stack.env_file, _start_up(stack), started)


def _start_up(stack: Stack) -> subprocess.Popen[str]:
    check_ports(published_ports(stack.values), stack.project)
    return start_compose(stack.env_file, *UP_ARGS)


def _wait(stack: Stack, process: subprocess.Popen[str], started: float) -> UpResult:
    """Let `docker compose` finish, then wait until both servers answer authenticated queries."""
    # Importing the database clients overlaps with `docker compose`.
    import devkit.readiness  # noqa: F401

    finish_compose(process)
    return UpResult(wait_ready(stack, stack.ready_timeout), time.monotonic() - started)


def wait_ready(stack: Stack, timeout: float) -> dict[str, str]:
    """Every service's version once it answers an authenticated query (devkit.readiness). The
    app's database closed by a snapshot command: the one running is waited for, or what an
    interrupted one left is put right (said on stderr), then asked again."""
    import sys

    from devkit.errors import DatabaseClosed
    from devkit.readiness import wait_ready as ask

    deadline = time.monotonic() + timeout
    try:
        return ask(stack, timeout)
    except DatabaseClosed:
        from devkit.snapshot_recovery import recover

        recover(stack, say=lambda line: print(line, file=sys.stderr))
    return ask(stack, max(deadline - time.monotonic(), 1.0))


def _compose_then_wait(stack: Stack, started: float, *args: str) -> UpResult:
    return _wait(stack, start_compose(stack.env_file, *args), started)


def up(stack: Stack) -> UpResult:
    """Start the stack and return once both servers answer authenticated queries (taking over
    the `docker compose up` started early for the same app, if there is one)."""
    global _started_early
    early, _started_early = _started_early, None
    if early and early[0] == stack.env_file:
        _, process, started = early
    else:
        started = time.monotonic()
        process = _start_up(stack)
    try:
        return _wait(stack, process, started)
    except DaemonDown:
        # F5 on a WSL distribution that just started: its boot command is starting dockerd.
        if not wait_for_starting_daemon():
            raise
    return _wait(stack, _start_up(stack), started)


def hold(stack: Stack) -> None:
    """Block until the stack's database container stops (`devkit down`, `docker stop`, a crash):
    VS Code's start task stays running meanwhile, which keeps a WSL distribution alive while
    the databases run (WSL stops an idle one, services included, about 15 s after its last
    Windows client exits: microsoft/WSL#9667)."""
    from devkit.compose import docker_client
    from devkit.volumes import database_container

    with docker_client() as client:
        client.api.wait(database_container(stack.project), timeout=None)


def down(stack: Stack, service: str | None = None) -> None:
    """Stop the containers (or one service's); volumes (the data) and containers stay, so `up`
    is quick."""
    check_service(service)
    run_compose(stack.env_file, "stop", *([service] if service else []))


def down_all() -> list[tuple[str, str]]:
    """Stop every devkit stack that has a container running (`docker compose -p PROJECT stop`:
    no compose file or .env.local needed, so a stack whose app is gone stops too); the
    (project, app directory) of each, in order."""
    from devkit.stacks import machine_stacks

    stopped = []
    for stack in machine_stacks():
        if any(service.state == "running" for service in stack.services.values()):
            finish_compose(start_compose_project(stack.project, "stop"))
            stopped.append((stack.project, stack.app_dir))
    return stopped


def restart(stack: Stack, service: str | None) -> UpResult:
    check_service(service)
    return _compose_then_wait(stack, time.monotonic(), "restart", *([service] if service else []))


def logs(stack: Stack, service: str | None, follow: bool, tail: int | None) -> int:
    check_service(service)
    args = ["logs", "--timestamps"]
    if follow:
        args.append("--follow")
    if tail is not None:
        args += ["--tail", str(tail)]
    return stream_compose(stack.env_file, *args, *([service] if service else []))


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    state: str
    health: str
    address: str
    version: str
    volume_size: str


def ps_entries(stack: Stack) -> dict[str, dict]:
    out = run_compose(stack.env_file, "ps", "--all", "--format", "json").strip()
    if not out:
        return {}
    # Compose 2.21+ prints one JSON object per line; older releases print one array.
    entries = (
        json.loads(out) if out.startswith("[") else [json.loads(line) for line in out.splitlines()]
    )
    return {entry["Service"]: entry for entry in entries}


def status(stack: Stack) -> list[ServiceStatus]:
    from devkit.services import SERVICES, probe
    from devkit.volumes import human_size, volume_sizes

    entries = ps_entries(stack)
    sizes = volume_sizes()
    rows = []
    for service in SERVICES.values():
        entry = entries.get(service.name, {})
        state = entry.get("State", "absent")
        version = "-"
        if state == "running":
            try:
                version = probe(service.name)(stack, service.name, timeout=2.0)
            except Exception as exc:  # reported in the table, never fatal for status
                version = f"no answer ({type(exc).__name__})"
        rows.append(
            ServiceStatus(
                service=service.name,
                state=state,
                health=entry.get("Health") or "-",
                address=f"{stack.host}:{stack.ports[service.name]}",
                version=version,
                volume_size=human_size(sizes.get((stack.project, service.volume), -1)),
            )
        )
    return rows
