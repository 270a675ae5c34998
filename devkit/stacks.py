"""Which stack (docs/ARCHITECTURE.md, "Which app, which stack"): every devkit stack on this
machine as Docker's labels show it (never a file of the kit's, which could go stale), and what a
new app's stack is called and where it listens.

A devkit stack is a Compose project with a database volume labelled with its app's directory
(compose.yaml). Its containers carry the app's directory too, refreshed on every start; they win
over the volume's label, which Docker cannot change after the volume was made.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from devkit.errors import DockerUnavailable, PortInUse
from devkit.services import PREFERRED_PORTS, SERVICES
from devkit.volumes import OWNER_LABEL

# The first stack listens where its services do by default (5432, 6379: devkit.services); the
# next app takes the next free set (5433/6380, ...).
MAX_PAIRS = 200
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# Compose records the env file a container was made from (the app's .env.local).
ENV_FILE_LABEL = "com.docker.compose.project.environment_file"


def project_for(app_dir: Path) -> str:
    """A new app's Compose project name: its directory's name as a readable slug, and a short
    hash of its full path (two apps called `api` in different places get different stacks)."""
    slug = re.sub(r"[^a-z0-9_]+", "-", app_dir.name.lower()).strip("-_")[:40] or "app"
    return f"{slug}-{hashlib.sha256(str(app_dir).encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class Service:
    state: str  # Docker's: running, exited, created, ...
    ports: tuple[int, ...]  # host ports it publishes (also when stopped)


@dataclass
class MachineStack:
    project: str
    app_dir: str  # as the containers say, else as the database volume says
    created_for: str  # the database volume's label: the app directory it was made for
    services: dict[str, Service] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        running = [s for s in self.services.values() if s.state == "running"]
        if not self.services:
            return "no containers"
        if len(running) == len(self.services):
            return "running"
        return "stopped" if not running else "partly running"

    def ports(self) -> set[int]:
        return {port for service in self.services.values() for port in service.ports}


def _host_ports(bindings: dict | None) -> tuple[int, ...]:
    return tuple(
        sorted(
            int(binding["HostPort"])
            for entries in (bindings or {}).values()
            for binding in entries or ()
            if str(binding.get("HostPort", "")).isdigit()
        )
    )


def _inspected(client, container_id: str) -> dict | None:
    """The container's details; None when it was removed since it was listed (another stack's
    `down` between the two calls: CI once saw setup fail with the engine's 404)."""
    from docker.errors import NotFound

    try:
        return client.api.inspect_container(container_id)
    except NotFound:
        return None


def machine_stacks() -> list[MachineStack]:
    """Every devkit stack Docker knows, running or not, sorted by app directory. Raises
    DockerUnavailable when the daemon does not answer."""
    from devkit.compose import docker_client

    with docker_client() as client:
        volumes = client.api.volumes(filters={"label": OWNER_LABEL}).get("Volumes") or []
        containers = [
            container
            for summary in client.api.containers(all=True, filters={"label": PROJECT_LABEL})
            if (container := _inspected(client, summary["Id"])) is not None
        ]
    stacks: dict[str, MachineStack] = {}
    for volume in volumes:
        labels = volume.get("Labels") or {}
        project = labels.get(PROJECT_LABEL)
        if not project:
            continue
        stack = stacks.setdefault(project, MachineStack(project, "", ""))
        stack.volumes.append(volume["Name"])
        if (
            labels.get("com.docker.compose.volume") == SERVICES["postgres"].volume
            or not stack.created_for
        ):
            stack.created_for = labels.get(OWNER_LABEL, "")
    for container in containers:
        labels = container["Config"].get("Labels") or {}
        stack = stacks.get(labels.get(PROJECT_LABEL, ""))
        if stack is None and OWNER_LABEL not in labels:
            continue  # another Compose project
        if stack is None:
            stack = stacks.setdefault(
                labels[PROJECT_LABEL], MachineStack(labels[PROJECT_LABEL], "", "")
            )
        env_file = labels.get(ENV_FILE_LABEL, "")
        stack.app_dir = labels.get(OWNER_LABEL) or (str(Path(env_file).parent) if env_file else "")
        stack.services[labels.get(SERVICE_LABEL, "?")] = Service(
            container["State"]["Status"],
            _host_ports(container["HostConfig"].get("PortBindings")),
        )
    for stack in stacks.values():
        stack.app_dir = stack.app_dir or stack.created_for
    return sorted(stacks.values(), key=lambda stack: (stack.app_dir, stack.project))


def recorded_ports(app_dir: str) -> set[int]:
    """The ports an app's .env.local records (a stack without containers keeps them)."""
    from devkit.dotenv import EnvFileError
    from devkit.envfile import read_env_file
    from devkit.paths import ENV_FILE_NAME

    try:
        values = read_env_file(Path(app_dir) / ENV_FILE_NAME)
    except (EnvFileError, OSError):
        return set()
    return {
        int(values[s.port_key]) for s in SERVICES.values() if values.get(s.port_key, "").isdigit()
    }


def ports_of_other_stacks(stacks: list[MachineStack], project: str) -> set[int]:
    """The ports every other devkit stack has taken, stopped ones included."""
    taken: set[int] = set()
    for stack in stacks:
        if stack.project != project:
            taken |= stack.ports() or recorded_ports(stack.app_dir)
    return taken


def pick_ports(
    address: str, taken: set[int], preferred: tuple[int, ...] = PREFERRED_PORTS
) -> tuple[int, ...]:
    """The services' preferred ports (5432 and 6379) when all are free, else the next free set
    (5433 and 6380, ...) that no other devkit stack has taken."""
    from devkit.ports import port_free

    for step in range(MAX_PAIRS):
        ports = tuple(port + step for port in preferred)
        if not taken & set(ports) and all(port_free(address, port) for port in ports):
            return ports
    first = "/".join(map(str, preferred))
    last = "/".join(str(port + MAX_PAIRS - 1) for port in preferred)
    raise PortInUse(
        f"no free pair of ports from {first} to {last} on {address}",
        "stop stacks you do not use (`devkit apps`, `devkit down --all`), or set "
        + " and ".join(f"INVOKE_DEVKIT_{s.port_setting.upper()}" for s in SERVICES.values()),
    )


def settle(settings, app_dir: Path, existing: dict[str, str]):
    """`settings` with the per-app ones (project name, ports) settled for the app in `app_dir`:
    as set explicitly; else as its .env.local (`existing`) records them; else new: the project of
    a stack already labelled with this directory, or one named after it, and the first free pair
    of ports. Returns the settings and what was chosen anew, to tell the user ("" when nothing)."""
    from devkit.settings.table import PER_APP, SETTINGS

    updates: dict[str, str | int] = {}
    recorded_project = existing.get("DEVKIT_PROJECT_NAME", "").strip()
    # Ports recorded for another stack (a copied .env.local given a project of its own) are
    # that stack's: this one picks its own.
    own_record = not settings.project_name or settings.project_name == recorded_project
    for name in PER_APP:
        recorded = existing.get(SETTINGS[name].env_key, "").strip()
        if not getattr(settings, name) and recorded and (name == "project_name" or own_record):
            # A port that is not a number is written anew (load_stack names it until then).
            if isinstance(SETTINGS[name].default, str):
                updates[name] = recorded
            elif recorded.isdigit() and 0 < int(recorded) < 65536:
                updates[name] = int(recorded)
    settled = settings.model_copy(update=updates)
    port_settings = [s.port_setting for s in SERVICES.values()]

    def ports_of(settings) -> list[int]:
        return [getattr(settings, name) for name in port_settings]

    if settled.project_name and all(ports_of(settled)):
        return settled, ""
    try:
        stacks = machine_stacks()
    # setup started the engine first: here it refuses this user (not in its group yet)
    except DockerUnavailable:
        stacks = []
    labelled = next((s.project for s in stacks if str(app_dir) in (s.app_dir, s.created_for)), "")
    project = settled.project_name or labelled or project_for(app_dir)
    chosen = {"project_name": project}
    # A stack already there for this app (its .env.local lost, or an earlier kit's) keeps its
    # ports (was: its own containers held them, so it was moved to the next free pair).
    own = next((s.services for s in stacks if s.project == project), {})
    kept = {
        s.port_setting: own[name].ports[0]
        for name, s in SERVICES.items()
        if name in own and own[name].ports and not getattr(settled, s.port_setting)
    }
    settled = settled.model_copy(update=kept)
    held: dict = {}
    if not all(ports_of(settled)):
        # On WSL 2, a port a Windows program holds (a PostgreSQL service on 5432) would take
        # the Windows tools' connections away from the stack: skipped, and named.
        held = held_on_windows(WINDOWS_CANDIDATES)
        taken = (
            ports_of_other_stacks(stacks, project)
            | {port for port in ports_of(settled) if port}
            | set(held)
        )
        picked = pick_ports(settled.bind_address, taken)
        for name, set_port, new_port in zip(port_settings, ports_of(settled), picked, strict=True):
            chosen[name] = set_port or new_port
    settled = settled.model_copy(update=chosen)
    ports_said = " and ".join(
        f"{port} ({name})" for name, port in zip(SERVICES, ports_of(settled), strict=True)
    )
    new_project = not settings.project_name and "project_name" not in updates
    if new_project and project == labelled:
        return (
            settled,
            f"the stack already here for this app: project {project}, ports {ports_said}",
        )
    said = [f"project {settled.project_name}"] if new_project else []
    why = []
    if port_settings[0] in chosen:
        said.append(f"ports {ports_said}")
        why = _why_not_preferred(settled, stacks, project, held)
    if not said:
        return settled, ""
    return settled, "new stack for this app: " + ", ".join(said) + (
        f"\n  not {'/'.join(map(str, PREFERRED_PORTS))}: " + "; ".join(why) if why else ""
    )


# The ports setup may pick on WSL 2, asked of Windows in one go (a PowerShell start, ~1 s).
WINDOWS_CANDIDATES = [port + step for port in PREFERRED_PORTS for step in range(20)]


def held_on_windows(ports: list[int], host=None) -> dict:
    """On WSL 2, which of PORTS a Windows program other than WSL's own relay listens on (port ->
    devkit.windows.Listener); {} elsewhere, or when Windows cannot be asked."""
    from devkit.wsl import THIS_HOST

    host = host or THIS_HOST
    if host.wsl() != 2:
        return {}
    from devkit.windows import port_intruders, windows_facts_of

    facts = windows_facts_of(ports, host)
    return {found.port: found for found in port_intruders(facts.listeners)} if facts else {}


def _why_not_preferred(
    settled, stacks: list[MachineStack], project: str, held: dict | None = None
) -> list[str]:
    """What kept a new stack off 5432/6379: the stack or process holding each (issue 26: a
    developer saw 5434 chosen and was not told why), on Windows too."""
    from devkit.ports import describe_holder, port_free

    reasons = []
    for service in SERVICES.values():
        preferred = service.preferred_port
        if getattr(settled, service.port_setting) == preferred:
            continue
        other = next((s for s in stacks if s.project != project and preferred in s.ports()), None)
        if other is not None:
            reasons.append(f"{preferred} belongs to the stack of {other.app_dir or other.project}")
        elif held and preferred in held:
            reasons.append(
                f"{preferred} is held on Windows by {held[preferred].process} (pid "
                f"{held[preferred].pid}): Windows apps connecting to 127.0.0.1:{preferred} would reach it"
            )
        elif not port_free(settled.bind_address, preferred):
            reasons.append(f"{preferred} is taken by {describe_holder(preferred)[0]}")
    return reasons


@dataclass(frozen=True)
class AppRow:
    """One line of `devkit apps`."""

    app_dir: str
    project: str
    state: str
    ports: str
    versions: str
    volume_size: str
    last_backup: str
    note: str  # what is odd about it ("" when nothing): a moved app, an .env.local gone


def _versions(stack) -> str:
    from devkit.services import probe

    found = []
    for name in SERVICES:
        try:
            found.append(f"{name} {probe(name)(stack, name, timeout=1.0)}")
        except Exception:  # a listing never fails for one stack that does not answer
            found.append(f"{name} ?")
    return ", ".join(found)


def _last_backup(app_dir: Path, backup_dir: str) -> str:
    import datetime

    from devkit.backup.files import backups_of, list_backups

    try:
        newest = next(iter(list_backups(backups_of(app_dir, backup_dir))), None)
    except OSError:
        newest = None
    if newest is None:
        return "-"
    return datetime.datetime.fromtimestamp(newest.mtime).strftime("%Y-%m-%d %H:%M")


def app_rows(backup_dir: str = "") -> list[AppRow]:
    """Every devkit stack on this machine, as `devkit apps` shows it. `backup_dir`: the
    backup_dir setting (relative to each app, or absolute)."""
    from devkit.dotenv import EnvFileError
    from devkit.envfile import check_stack_values, read_env_file, stack_of
    from devkit.errors import SetupRequired
    from devkit.paths import ENV_FILE_NAME
    from devkit.volumes import human_size, volume_sizes

    stacks = machine_stacks()
    sizes = volume_sizes() if stacks else {}
    rows = []
    for found in stacks:
        app_dir = Path(found.app_dir)
        env_file = app_dir / ENV_FILE_NAME
        stack, note = None, ""
        try:
            values = read_env_file(env_file)
            if values.get("DEVKIT_PROJECT_NAME") == found.project:
                check_stack_values(env_file, values)
                stack = stack_of(env_file, values)
            else:
                note = f"{env_file} is gone or names another stack (moved? run setup there)"
        except (EnvFileError, SetupRequired, OSError) as exc:
            note = f"{env_file} cannot be read ({getattr(exc, 'cause', exc)})"
        ports = sorted(found.ports()) or (sorted(set(stack.ports.values())) if stack else [])
        size = sum(
            max(sizes.get((found.project, service.volume), 0), 0) for service in SERVICES.values()
        )
        rows.append(
            AppRow(
                app_dir=found.app_dir or "?",
                project=found.project,
                state=found.state,
                ports="/".join(map(str, ports)) or "-",
                versions=_versions(stack) if stack and "running" in found.state else "-",
                volume_size=human_size(size) if found.volumes else "-",
                last_backup=_last_backup(app_dir, backup_dir) if found.app_dir else "-",
                note=note,
            )
        )
    return rows
