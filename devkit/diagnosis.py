"""`devkit doctor`: the usual troubles of a workstation (Docker, ports, passwords, disk,
migrations) as checks, each OK / WARN / FAIL with a fix; those of WSL and the Windows side are
devkit/diagnosis_wsl.py's. `run_checks` runs them all in the order doctor prints them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devkit.envfile import Stack, subprocess_environ
from devkit.findings import FAIL, OK, SKIP, WARN, Check

DISK_FAIL = 1 << 30  # bytes free
DISK_WARN = 5 << 30


def _docker(*args: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=subprocess_environ(),
    )


# Before Engine 28, a port published on 127.0.0.1 is reachable from hosts of the local network
# that route 127.0.0.0/8 to this machine (moby#45610): the DNAT rule matches packets that did
# not arrive on `lo`. Engine 28 drops those; Debian 12's docker.io is 20.10.
LOOPBACK_SAFE_ENGINE = 28
LOOPBACK_RULE = "sudo iptables -t raw -I PREROUTING ! -i lo -d 127.0.0.0/8 -j DROP"


def check_loopback_publishing(engine_version: str, bind_address: str = "127.0.0.1") -> Check:
    """WARN when the engine's loopback-only ports can be reached from the local network."""
    name = "loopback ports"
    if not bind_address.startswith("127."):
        return Check(name, OK, f"ports are published on {bind_address} on purpose (bind_address)")
    try:
        major = int(engine_version.split(".")[0])
    except ValueError:
        major = 0
    if major >= LOOPBACK_SAFE_ENGINE:
        return Check(name, OK, f"Engine {engine_version} keeps 127.0.0.1 ports to this machine")
    return Check(
        name,
        WARN,
        f"Docker Engine {engine_version} (< {LOOPBACK_SAFE_ENGINE}) lets hosts on the local network "
        "reach ports published on 127.0.0.1 (moby#45610)",
        f"install Docker's own packages, Engine {LOOPBACK_SAFE_ENGINE} or newer, or add the rule "
        f"yourself (the kit changes no firewall): {LOOPBACK_RULE}",
    )


def check_docker(bind_address: str = "127.0.0.1", host=None) -> list[Check]:
    """The docker command, the daemon, Compose. `host`: devkit.wsl.HostFiles (tests)."""
    from devkit.compose import docker_failure
    from devkit.vscode_hooks import default_distro
    from devkit.wsl import THIS_HOST, engines

    host = host or THIS_HOST
    docker = shutil.which("docker", path=host.path)
    if not docker:
        return [Check("docker", FAIL, "no docker command on PATH", "run `devkit setup`")]
    if host.wsl():
        found = engines(host)
        if found.windows_shim:
            return [
                Check(
                    "docker",
                    FAIL,
                    f"`docker` here is a Windows program ({found.docker}, Docker Desktop's shim), "
                    "which does not work inside WSL",
                    f"turn on {default_distro()} in Docker Desktop > Settings > Resources > WSL "
                    "integration (or quit Docker Desktop and run setup: it installs an engine here)",
                )
            ]
    checks = [Check("docker", OK, docker)]
    try:
        server = _docker("version", "--format", "{{.Server.Version}}")
    except subprocess.TimeoutExpired:
        return [*checks, Check("daemon", FAIL, "the daemon did not answer in 10 s", "restart it")]
    if server.returncode != 0:
        error = docker_failure(server.stderr)
        return [*checks, Check("daemon", FAIL, error.args[0], error.hint)]
    checks.append(Check("daemon", OK, f"Docker Engine {server.stdout.strip()}"))
    checks.append(check_loopback_publishing(server.stdout.strip(), bind_address))
    compose = _docker("compose", "version", "--short")
    if compose.returncode != 0:
        checks.append(Check("compose", FAIL, "Compose v2 is missing", "run `devkit setup`"))
    else:
        checks.append(Check("compose", OK, f"Compose {compose.stdout.strip()}"))
    return checks


def check_env_file(env_file: Path, mounts: Path | None = None) -> Check:
    """Present and private; on a Windows drive where chmod does nothing, it says so."""
    from devkit.wsl import THIS_HOST, private_file_problem

    if not env_file.is_file():
        return Check("env file", FAIL, f"{env_file} is missing", "run `devkit setup`")
    if problem := private_file_problem(env_file, mounts or THIS_HOST.mounts):
        return Check("env file", WARN, *problem)
    from devkit.app_repo import tracked_env_file

    if tracked := tracked_env_file(env_file.parent):
        return Check("env file", FAIL, *tracked)
    return Check("env file", OK, f"{env_file} (mode 0600)")


def check_ports(stack: Stack) -> list[Check]:
    from devkit.ports import port_states, published_ports

    checks = []
    for state in port_states(published_ports(stack.values), stack.project):
        name = f"port {state.port}"
        if state.conflict:
            checks.append(Check(name, FAIL, state.conflict.cause, state.conflict.hint))
        elif state.holder:
            checks.append(Check(name, OK, f"{state.service}: {state.holder}"))
        else:
            checks.append(Check(name, OK, f"free for {state.service} (on `devkit up`)"))
    return checks


def check_containers(stack: Stack) -> tuple[list[Check], set[str]]:
    """Per service: running and healthy? Also the set of services that are running."""
    from devkit.lifecycle import ps_entries
    from devkit.services import NAMES

    entries = ps_entries(stack)
    checks, running = [], set()
    for service in NAMES:
        entry = entries.get(service)
        if not entry or entry.get("State") != "running":
            state = entry.get("State", "absent") if entry else "absent"
            checks.append(Check(f"{service} container", FAIL, f"{state}", "start it: devkit up"))
            continue
        running.add(service)
        health = entry.get("Health") or "no healthcheck"
        if health == "unhealthy":
            checks.append(
                Check(
                    f"{service} container",
                    FAIL,
                    "running but unhealthy",
                    f"see why: devkit logs -s {service}",
                )
            )
        else:
            checks.append(Check(f"{service} container", OK, f"running ({health})"))
    return checks, running


_FREE_SPACE = "docker system prune, devkit db.prune, devkit db.snapshot.drop NAME"


def check_disk(paths: Mapping[str, Path]) -> list[Check]:
    checks = []
    for label, path in paths.items():
        while not path.exists() and path != path.parent:
            path = path.parent
        free = shutil.disk_usage(path).free
        text = f"{free / (1 << 30):.1f} GiB free on {path} ({label})"
        if free < DISK_FAIL:
            checks.append(Check("disk", FAIL, text, f"free space: {_FREE_SPACE}"))
        elif free < DISK_WARN:
            checks.append(Check("disk", WARN, text, f"free space soon: {_FREE_SPACE}"))
        else:
            checks.append(Check("disk", OK, text))
    return checks


def check_credentials(stack: Stack, running: set[str]) -> list[Check]:
    from devkit.readiness import auth_rejected
    from devkit.services import SERVICES, probe

    checks = []
    for service in SERVICES:
        if service not in running:
            checks.append(Check(f"{service} login", SKIP, "not running"))
            continue
        try:
            version = probe(service)(stack, service, timeout=3)
        except Exception as exc:  # every failure is reported as a check, never raised
            if auth_rejected(exc):
                checks.append(
                    Check(
                        f"{service} login",
                        FAIL,
                        f"{service} rejects the password in {stack.env_file.name}",
                        SERVICES[service].spec.password_fix,
                    )
                )
            else:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                checks.append(
                    Check(f"{service} login", FAIL, f"no answer: {first}", "devkit restart")
                )
            continue
        checks.append(
            Check(f"{service} login", OK, f"{service} {version} accepts .env.local's credentials")
        )
    return checks


def check_migrations(stack: Stack) -> Check:
    from devkit.alembic_api import (
        MigrationError,
        alembic_config,
        database_heads,
        has_migrations,
        script_heads,
    )
    from devkit.backup.target import stack_target

    app_dir = stack.env_file.parent
    if not has_migrations(app_dir):
        return Check("migrations", SKIP, f"no alembic.ini in {app_dir}")
    try:
        config = alembic_config(app_dir, stack_target(stack.values))
        heads = script_heads(config)
        at = database_heads(config)
    except MigrationError as exc:
        return Check("migrations", FAIL, exc.args[0], exc.hint)
    if len(heads) > 1:
        return Check(
            "migrations",
            FAIL,
            f"the migrations have {len(heads)} heads: {', '.join(heads)}",
            "devkit db.merge-heads, then devkit db.migrate",
        )
    if set(at) != set(heads):
        return Check(
            "migrations",
            FAIL,
            f"the database is at {','.join(at) or 'base (no tables)'}, the newest migration is "
            f"{','.join(heads)}",
            "devkit db.migrate",
        )
    return Check("migrations", OK, f"at head ({','.join(heads)})")


def run_checks(config: Mapping[str, Any]) -> list[Check]:
    from devkit.app import resolve_app_dir
    from devkit.diagnosis_wsl import check_clock, check_vscode_hooks, check_windows_ports, check_wsl
    from devkit.envfile import ENV_FILE_NAME, load_stack
    from devkit.errors import DevkitError
    from devkit.windows import windows_facts_of, windows_path
    from devkit.wsl import THIS_HOST

    checks = check_docker(str(config.get("bind_address") or "127.0.0.1"))
    daemon_up = any(c.name == "daemon" and c.status == OK for c in checks)
    try:
        stack, stack_error = load_stack(config), None
    except DevkitError as exc:
        stack, stack_error = None, exc
    facts = windows_facts_of(list(stack.ports.values()) if stack else [])
    checks.append(check_wsl(facts=facts))
    checks += check_clock(facts)
    env_file = resolve_app_dir(str(config.get("app_dir") or "")) / ENV_FILE_NAME
    checks.append(check_env_file(env_file))
    checks += check_vscode_hooks(env_file.parent)
    disks = {"app": env_file.parent}
    if daemon_up:
        root = _docker("info", "--format", "{{.DockerRootDir}}").stdout.strip()
        if root:
            disks["docker"] = Path(root)
    if facts and (vhd := windows_path(facts.base_path, THIS_HOST.windows_drives)):
        disks["the Windows drive of WSL's virtual disk"] = vhd  # the virtual disk shows 1 TB
    checks += check_disk(disks)
    from devkit.board import check_power

    if (power := check_power()) is not None:
        checks.append(power)
    if stack is None:
        return [*checks, Check("stack", FAIL, stack_error.args[0], stack_error.hint)]
    checks += check_ports(stack)
    if facts is not None:
        checks += check_windows_ports(stack, facts)
    if not daemon_up:
        return [*checks, Check("containers", SKIP, "the daemon does not answer")]
    container_checks, running = check_containers(stack)
    checks += container_checks
    checks += check_credentials(stack, running)
    if "postgres" in running and all(c.status == OK for c in checks if c.name == "postgres login"):
        checks.append(check_migrations(stack))
        checks.append(check_snapshots(stack, low_disk=any(
            c.name == "disk" and c.status in (WARN, FAIL) for c in checks
        )))  # fmt: skip
    if (pulled := check_pulled(stack)) is not None:
        checks.append(pulled)
    return checks


def check_pulled(stack: Stack) -> Check | None:
    """Where the data last came from when it was pulled (db.pull), and whether db-pull.yaml's
    rules changed since (the data was masked by the older ones); None when never pulled."""
    from devkit.pull.run import last_pull

    pulled = last_pull(stack.project)
    if pulled is None:
        return None
    text = (
        f"last pulled from {pulled.get('host')} ({pulled.get('inventory')}) at "
        f"{str(pulled.get('time', ''))[:16].replace('T', ' ')}, rules {str(pulled.get('rules'))[:12]}"
    )
    from devkit.pull.rules import RulesError, load

    try:
        now = load(stack.app_dir).digest()
    except RulesError:
        now = ""
    if now and now != pulled.get("rules"):
        return Check(
            "data source", WARN, text + "; db-pull.yaml's rules changed since",
            f"pull again to apply them: devkit db.pull {Path(str(pulled.get('inventory'))).name}",
        )  # fmt: skip
    return Check("data source", OK, text)


def check_snapshots(stack: Stack, low_disk: bool) -> Check:
    """The stack's snapshots (db.snapshot) and the space they take in Docker's disk: a WARN with
    the way to drop them when that disk runs low."""
    from devkit.errors import DevkitError
    from devkit.snapshot_catalog import apart
    from devkit.snapshots import list_snapshots
    from devkit.volumes import human_size

    try:
        found = list_snapshots(stack)
    except DevkitError as exc:
        return Check("snapshots", SKIP, exc.cause)
    if not found:
        return Check("snapshots", OK, "none")
    snapshots, branches = apart(found)
    text = f"{len(snapshots)}, {human_size(sum(s.on_disk for s in snapshots))}" + (
        f"; other branches' databases: {len(branches)}, {human_size(sum(s.on_disk for s in branches))}"
        if branches
        else ""
    )
    text += " in Docker's disk"
    if low_disk:
        return Check(
            "snapshots",
            WARN,
            text,
            "devkit db.snapshots and devkit branches list them; devkit db.snapshot.drop NAME, "
            "devkit branches.prune",
        )
    return Check("snapshots", OK, text)


def repair_postgres_password(stack: Stack) -> None:
    """Set the app user's password on the server to .env.local's, through the container's local
    socket (trusted inside the container, as in the official image); SQL goes in on stdin."""
    from devkit.errors import CommandFailed
    from devkit.shells import container_of

    literal = stack.pg_password.replace("'", "''")
    role = '"' + stack.pg_user.replace('"', '""') + '"'
    psql = ["psql", "-U", stack.pg_user, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
    done = subprocess.run(
        ["docker", "exec", "-i", "-u", "postgres", container_of(stack, "postgres"), *psql],
        input=f"ALTER ROLE {role} PASSWORD '{literal}';\n",
        capture_output=True,
        text=True,
        check=False,
        env=subprocess_environ(),
    )
    if done.returncode != 0:
        raise CommandFailed(
            f"could not set the password: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}",
            "reset the database instead (devkit db.reset --no-backup deletes its data)",
        )
