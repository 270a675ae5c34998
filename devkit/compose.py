"""Running `docker compose` on compose/compose.yaml with the app's .env.local, and reading
Docker's failures into one-line causes with a fix."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from devkit.envfile import subprocess_environ
from devkit.errors import (
    CommandFailed,
    DaemonDown,
    DevkitError,
    DockerForbidden,
    DockerUnavailable,
    ImageMissing,
    PortInUse,
)
from devkit.paths import COMPOSE_FILE


def file_defaults() -> dict[str, str]:
    """What compose.yaml takes for each .env.local key it reads with a default (`${KEY:-value}`)
    when the file lacks that key, by key."""
    return dict(re.findall(r"\$\{([A-Z_]+):-([^}]*)\}", COMPOSE_FILE.read_text()))


def whole_seconds(duration: str) -> int:
    """A Compose duration of whole seconds ("30s", "1m30s", "1h") as the seconds Docker keeps
    (Config.StopTimeout); ValueError for any other form, which no container could match."""
    found = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration.strip())
    if not duration.strip() or not found:
        raise ValueError(f"{duration!r} is not a duration of whole seconds (such as 30s or 1m30s)")
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def runs_otherwise(definition: dict, restart_policy: str, stop_timeout: object) -> str:
    """Why a container runs otherwise than its service's DEFINITION in compose.yaml says: its
    restart policy and stop timeout, as `docker inspect` gives them (HostConfig.RestartPolicy.Name,
    Config.StopTimeout); "" when it runs as said. `docker update --restart=no` changes a running
    container behind Compose, whose config hash does not see it (so `up` keeps the container):
    `devkit verify` names it and the stack role makes the container anew (the one rule)."""
    restart = str(definition.get("restart", "no"))
    grace = str(definition.get("stop_grace_period", "10s"))
    runs, wanted = f"{restart_policy} {stop_timeout}", f"{restart} {whole_seconds(grace)}"
    if runs == wanted:
        return ""
    return f"runs with restart policy and stop timeout {runs!r}, compose.yaml says {restart} and {grace}"


def compose_command(env_file: Path, *args: str) -> list[str]:
    return ["docker", "compose", "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args]


def start_compose(env_file: Path, *args: str) -> subprocess.Popen[str]:
    """Start `docker compose ARGS` with its output captured; finish it with `finish_compose`."""
    return _start(compose_command(env_file, *args))


def start_compose_project(project: str, *args: str) -> subprocess.Popen[str]:
    """start_compose for a project by its name alone (Compose finds its containers by label)."""
    return _start(["docker", "compose", "-p", project, *args])


def _start(command: list[str]) -> subprocess.Popen[str]:
    if shutil.which("docker") is None:
        raise DockerUnavailable("the docker command is not installed", "run `devkit setup`")
    return subprocess.Popen(
        command,
        env=subprocess_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_compose(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate()
    if process.returncode != 0:
        raise docker_failure(err or out)
    return out


def run_compose(env_file: Path, *args: str) -> str:
    """Run `docker compose ARGS` to the end; its stdout, or a DevkitError saying why it failed."""
    return finish_compose(start_compose(env_file, *args))


def stream_compose(env_file: Path, *args: str) -> int:
    """Run `docker compose ARGS` attached to the terminal (logs, follow); its exit code."""
    if shutil.which("docker") is None:
        raise DockerUnavailable("the docker command is not installed", "run `devkit setup`")
    try:
        return subprocess.run(
            compose_command(env_file, *args), env=subprocess_environ(), check=False
        ).returncode
    except KeyboardInterrupt:
        return 130


@contextlib.contextmanager
def docker_client():
    """A client of the Docker API (docker-py) for the block; DockerUnavailable, with the fix,
    when the daemon does not answer or refuses this user."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
    except DockerException as exc:
        if "PermissionError" in str(exc) or "Permission denied" in str(exc):
            raise no_permission() from None
        raise DaemonDown("the Docker daemon is not running", daemon_start_hint()) from None
    try:
        yield client
    finally:
        client.close()


def daemon_starting(proc: Path = Path("/proc")) -> bool:
    """A dockerd process runs (it does not answer yet): as right after a WSL distribution
    started and its boot command started the daemon."""
    for comm in proc.glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "dockerd":
                return True
        except OSError:
            continue
    return False


DAEMON_START_WAIT = 60.0  # seconds


def wait_for_starting_daemon(timeout: float = DAEMON_START_WAIT) -> bool:
    """When the daemon does not answer but is starting, wait for it (at most `timeout` s,
    saying so on stderr); True when it answered. False at once when no daemon is starting."""
    import sys
    import time

    if not daemon_starting():
        return False
    print("devkit: waiting for the Docker daemon to start ...", file=sys.stderr, flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine_answers():
            return True
        time.sleep(0.5)
    raise DaemonDown(
        f"the Docker daemon is starting but did not answer within {timeout:.0f} s",
        "look at what it logs (/var/log/dockerd.log, /var/log/docker.log or "
        "`journalctl -u docker`), then run the command again",
    )


def engine_answers() -> bool:
    """Whether the Docker daemon answers (also when it refuses this user: it runs)."""
    try:
        with docker_client():
            return True
    except DockerForbidden:
        return True
    except DockerUnavailable:
        return False


def daemon_start_hint() -> str:
    """How to start the daemon on this kind of host."""
    from devkit.wsl import THIS_HOST

    if THIS_HOST.desktop_dir.exists():
        return "start Docker Desktop on Windows (WSL integration)"
    if THIS_HOST.systemd.is_dir():
        return "sudo systemctl start docker"
    from devkit.paths import server_name

    # A server is set up by provision from the controller (`devkit setup` is a workstation's).
    server = server_name()
    starts_it = (
        f"`devkit provision --inventory INVENTORY --limit {server}` on the controller starts it"
        if server
        else "`devkit setup` starts it"
    )
    if Path("/etc/init.d/docker").exists():
        return f"{starts_it} (no systemd here), or: sudo service docker start"
    return f"{starts_it} (no systemd here), or: sudo sh -c 'nohup dockerd >>/var/log/dockerd.log 2>&1 &'"


def no_permission(host=None) -> DockerForbidden:
    """The group's fix; on WSL, logging in again is `wsl --terminate`: VS Code's Remote - WSL
    server and every shell of the distribution keep their old groups until it stops. `host`:
    devkit.wsl.HostFiles (this machine's by default)."""
    from devkit.vscode_hooks import default_distro
    from devkit.wsl import THIS_HOST

    user = os.environ.get("USER", "$USER")
    again = "log in again (or `newgrp docker`)"
    if (host or THIS_HOST).wsl():
        again = (
            f"in PowerShell: wsl --terminate {default_distro()}, and open it again (VS Code's "
            "Remote - WSL server keeps the old groups until then; `newgrp docker` helps one shell)"
        )
    return DockerForbidden(
        "no permission to use the Docker daemon", f"sudo usermod -aG docker {user}, then {again}"
    )


def docker_failure(output: str) -> DevkitError:
    """Turn what Docker printed into a DevkitError with a fix."""
    text = output.strip()
    last = text.splitlines()[-1] if text else "docker compose failed without a message"
    if (
        "Cannot connect to the Docker daemon" in text
        or "docker.sock: connect: no such file" in text
    ):
        return DaemonDown("the Docker daemon is not running", daemon_start_hint())
    if "permission denied" in text and "docker.sock" in text:
        return no_permission()
    if "is not a docker command" in text or "unknown command: docker compose" in text:
        return DockerUnavailable("the Compose v2 plugin is missing", "run `devkit setup`")
    if m := re.search(r"No such image: (\S+)", text):
        return ImageMissing(
            f"image {m.group(1)} is not present",
            "run `devkit images.build` (builds it offline), or `devkit setup`",
        )
    if m := re.search(
        r"(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):(\d+).*(already allocated|address already in use)",
        text,
    ):
        return PortInUse(
            f"port {m.group(2)} on {m.group(1)} is already in use",
            "stop what holds it, or pick another port (see `devkit doctor`)",
        )
    return CommandFailed(
        f"docker compose failed: {last}", "see the message above; `devkit logs` may tell more"
    )
