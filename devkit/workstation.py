"""`devkit setup`: provision this machine through playbooks/dev.yml, then wait for the stack."""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devkit import paths
from devkit.app import app_of_directory, new_app_here, record_app_dir, resolve_app_dir
from devkit.app_repo import ignore_env_file, tracked_env_file
from devkit.diagnosis import check_loopback_publishing
from devkit.envfile import MANAGED_KEYS, Stack, env_values, load_stack, read_env_file
from devkit.errors import DockerUnavailable, SetupRequired
from devkit.findings import Check
from devkit.kit_code import compile_kit
from devkit.network import check, of_settings
from devkit.paths import COMPOSE_DIR, ENV_FILE_NAME, KIT_ROOT, LOCAL_INVENTORY, PLAYBOOKS, state_dir
from devkit.playbook import run_playbook
from devkit.ports import check_ports, published_ports
from devkit.settings.model import Settings
from devkit.stacks import settle
from devkit.volumes import moved_here, volume_conflict, volume_owner
from devkit.vscode_hooks import default_distro, role_vars
from devkit.worktrees import copied_from_main
from devkit.wsl import (
    THIS_HOST,
    HostFiles,
    private_file_problem,
    refuse_unready_wsl,
    slow_drive_warning,
)


@dataclass(frozen=True)
class SetupResult:
    stack: Stack
    versions: dict[str, str]
    changed: int
    seconds: float
    loopback: Check  # whether 127.0.0.1 ports stay on this machine with this engine
    # The playbook was skipped: nothing it manages changed since the last full setup
    # (devkit/setup_record.py).
    skipped: bool = False
    chosen: str = ""  # what was chosen anew for the app's stack (project, ports)
    moved_from: str = ""  # the app's old directory, when it moved and kept its data
    command: str = ""  # where the `devkit` command is, or why it was not linked
    # Why .env.local is readable by others after all (a Windows drive without DrvFs's metadata
    # option, where chmod does nothing), with the fix; None when it is private.
    env_file_problem: tuple[str, str] | None = None
    slow_drive: tuple[str, str] | None = None  # the app on a Windows drive (cause, fix)
    git_ignore: str = ""  # where .env.local was added to git's ignore list, "" when nothing
    tracked_secret: tuple[str, str] | None = None  # .env.local tracked by git (cause, fix)


def invoking_user() -> str:
    """The user the kit works for: the one who ran `sudo devkit …` (SUDO_USER), only when this
    process is root (`sudo -iu user` leaves SUDO_USER set in the user's own shell: believed
    there, the kit wrote the user's files under /root); else this process's user."""
    if os.geteuid() == 0 and os.environ.get("SUDO_USER"):
        return os.environ["SUDO_USER"]
    return getpass.getuser()


def engine_vars(install_docker: bool, network=None) -> dict:
    """The variables of playbooks/engine.yml: the engine, its users, the company network."""
    from devkit.network import Network

    return {
        "devkit_install_docker": install_docker,
        "docker_users": [invoking_user()],
        **(network or Network()).role_vars(),
    }


def playbook_vars(
    settings: Settings,
    app_dir: Path,
    existing: dict[str, str],
    install_docker: bool,
    install_vscode: bool = True,
    network=None,
) -> dict:
    env_file = app_dir / ENV_FILE_NAME
    user = invoking_user()
    return {
        **role_vars(
            app_dir,
            user,
            settings.vscode_host,
            settings.vscode_wsl_distro,
            settings.vscode_auto_start,
        ),
        **engine_vars(install_docker, network or of_settings(settings)),
        "devkit_vscode": install_vscode,
        "images_source": settings.images_source,
        "stack_project_src": str(COMPOSE_DIR),
        "stack_kit_dir": str(KIT_ROOT),
        "stack_kit_python": sys.executable,
        "stack_env_file": str(env_file),
        "stack_env_owner": user,
        # The owner's private state (devkit.paths: DEVKIT_STATE_DIR redirects it).
        "stack_state_dir": str(state_dir(Path(pwd.getpwnam(user).pw_dir))),
        "stack_env": env_values(settings, existing),
    }


def setup_app_dir(flag: str | None, configured: str) -> Path:
    """The app `setup` acts on: --app-dir; else the app the working directory is in (or one set
    in the settings); else the working directory itself, as a new app; else (in the kit, the home
    directory or /) the last one set up, or the sample app."""
    if flag:
        return Path(flag).expanduser().resolve()
    if not configured and (here := new_app_here()) is not None:
        return here
    return resolve_app_dir(configured, announce=False)


def setup(
    settings: Settings,
    app_dir_flag: str | None,
    install_docker: bool,
    echo: bool = True,
    install_vscode: bool = True,
    host: HostFiles = THIS_HOST,
    full: bool = False,
) -> SetupResult:
    """`host`: where to read what kind of host this is (tests give recorded files). `full`: run
    the playbook even when nothing it manages changed since the last full setup."""
    started = time.monotonic()
    refuse_unready_wsl(settings.vscode_wsl_distro or default_distro(), host)
    network = of_settings(settings)
    check(network)  # a proxy URL without a scheme, a CA that is no PEM: nothing changed yet
    settings_app_dir = settings.app_dir
    app_dir = setup_app_dir(app_dir_flag, settings_app_dir)
    if not app_dir.is_dir():
        raise SetupRequired(
            f"app directory {app_dir} does not exist", "create it, or pass --app-dir PATH"
        )
    existing = read_env_file(app_dir / ENV_FILE_NAME)
    if main := copied_from_main(app_dir, existing):
        # A git worktree's copy of the main worktree's .env.local: the app's own lines stay, the
        # kit's (the main stack's name, ports, passwords) make way for a stack of its own.
        existing = {key: value for key, value in existing.items() if key not in MANAGED_KEYS}
        print(f"{ENV_FILE_NAME} is a copy of {main}'s: this git worktree gets a stack of its own")
    start_engine(install_docker, echo, network)
    with one_setup_at_a_time():
        settings, chosen, result, moved_from, recorded = _settle_and_apply(
            settings, app_dir, existing, install_docker, install_vscode, echo, network, full
        )
    if app_dir_flag or app_of_directory() == app_dir or not settings_app_dir:
        # Remembered for tasks run outside any app; one set in the settings stays set there.
        record_app_dir(app_dir)

    from devkit.lifecycle import wait_ready

    stack = load_stack(settings.model_dump())
    versions = wait_ready(stack, settings.ready_timeout)
    if recorded:
        recorded()  # a full run whose stack is ready: the next setup may skip what it did
    engine = subprocess.run(
        ["docker", "version", "--format", "{{.Server.Version}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    compile_kit()  # the command's fast start (devkit/kit_code.py)
    return SetupResult(
        stack=stack,
        versions=versions,
        changed=result.changed,
        skipped=recorded is None,
        seconds=time.monotonic() - started,
        loopback=check_loopback_publishing(engine, settings.bind_address),
        chosen=chosen,
        moved_from=moved_from,
        command=link_command(),
        env_file_problem=private_file_problem(stack.env_file, host.mounts),
        slow_drive=slow_drive_warning(app_dir, host.mounts),
        git_ignore=str(ignore_env_file(app_dir) or ""),
        tracked_secret=tracked_env_file(app_dir),
    )


# Held from the choice of a new app's ports to its containers' start: two setups at once (two
# apps, two terminals) would otherwise pick the same free pair. For every user of the machine.
SETUP_LOCK = Path("/run/lock") if Path("/run/lock").is_dir() else Path("/tmp")


SETUP_WAIT = 1800.0  # seconds: another setup may be building the images (minutes, the first time)


@contextlib.contextmanager
def one_setup_at_a_time(say=print) -> Iterator[None]:
    import fcntl

    path = SETUP_LOCK / "devkit-setup.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError:  # someone else's file, not writable: go on unserialised (as before)
        yield
        return
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)  # the next user's setup opens it too (umask narrowed it)
        deadline, told = time.monotonic() + SETUP_WAIT, False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    say(f"waiting for another setup on this machine to start its stack ({path})")
                    told = True
                if time.monotonic() > deadline:
                    raise SetupRequired(
                        f"another setup has held {path} for {SETUP_WAIT / 60:.0f} minutes",
                        f"see which: fuser -v {path}; let it finish or stop it, then run setup again",
                    ) from None
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)


def _settle_and_apply(
    settings, app_dir, existing, install_docker, install_vscode, echo, network, full=False
):
    """The app's project and ports settled, its data's owner checked, the playbook applied
    unless nothing it manages changed since the last full setup (devkit/setup_record.py). The
    last value: what records this run once its stack is ready, None when it was skipped."""
    from devkit import setup_record
    from devkit.playbook import PlaybookResult

    settings, chosen = settle(
        settings.model_copy(update={"app_dir": str(app_dir)}), app_dir, existing
    )
    variables = playbook_vars(settings, app_dir, existing, install_docker, install_vscode, network)
    env = variables["stack_env"]
    project = env["DEVKIT_PROJECT_NAME"]
    owner = volume_owner(project)
    conflict = volume_conflict(project, owner, str(app_dir), had_password="PGPASSWORD" in existing)
    moved_from = ""
    home = Path(pwd.getpwnam(invoking_user()).pw_dir)
    if conflict and owner and moved_here(project, owner, str(app_dir), existing, home):
        conflict, moved_from = None, owner
    if conflict:
        raise conflict
    variables["stack_moved_from"] = moved_from
    check_ports(published_ports(env), project)
    digest = setup_record.inputs_digest(variables)
    if not full and setup_record.unchanged(project, digest):
        skipped = PlaybookResult(ok=0, changed=0, output="", returncode=0)
        return settings, chosen, skipped, moved_from, None
    setup_record.forget(project)  # a run that fails half-way leaves nothing to skip by
    with setup_record.files_named() as (env_vars, paths):
        result = run_playbook(
            PLAYBOOKS / "dev.yml", LOCAL_INVENTORY, variables, echo=echo, env=env_vars
        )
    return settings, chosen, result, moved_from, lambda: setup_record.save(project, digest, paths)


def start_engine(install_docker: bool, echo: bool, network=None) -> None:
    """Have the Docker daemon answer before anything is chosen or checked: a new app's stack
    name and ports depend on the stacks already on this machine, and those set to restart
    come back, on their ports, only when the daemon starts (was: a new app took 5432, and the
    stack that came back with the daemon held it). A bare machine gets the engine installed."""
    from devkit.compose import daemon_start_hint, engine_answers

    if engine_answers():
        return
    if install_docker:
        variables = engine_vars(True, network)
        run_playbook(PLAYBOOKS / "engine.yml", LOCAL_INVENTORY, variables, echo=echo)
        if engine_answers():
            return
        raise DockerUnavailable(
            "the Docker daemon does not answer, also after setup started it",
            f"{daemon_start_hint()}; then run setup again",
        )
    raise DockerUnavailable(
        "the Docker daemon is not running (and --no-docker-install leaves it to you)",
        f"start it ({daemon_start_hint()}), or run setup without --no-docker-install",
    )


def link_command() -> str:
    """Put the `devkit` command on the user's PATH: ~/.local/bin/devkit, a link to this kit's
    (.venv/bin/devkit). A link to another kit that still exists, or a file of the user's, is
    left alone. Returns what to tell the user."""
    target = Path(sys.executable).with_name("devkit")
    if not target.exists():
        return f"no {target} (run scripts/devkit setup: it installs the command)"
    account = pwd.getpwnam(invoking_user())
    bin_dir = paths.bin_dir(Path(account.pw_dir))
    link = bin_dir / "devkit"
    if link.is_symlink() and link.resolve() == target.resolve():
        pass
    elif (link.is_symlink() and link.exists()) or (link.exists() and not link.is_symlink()):
        return f"{link} is not this kit's: left as it is (this kit's command: {target})"
    else:
        if not bin_dir.exists():
            bin_dir.mkdir(parents=True)
            os.chown(bin_dir, account.pw_uid, account.pw_gid)
            if bin_dir.parent == Path(account.pw_dir) / ".local":
                os.chown(bin_dir.parent, account.pw_uid, account.pw_gid)
        link.unlink(missing_ok=True)  # a link to a kit that is gone
        try:
            link.symlink_to(target)
            os.lchown(link, account.pw_uid, account.pw_gid)
        except FileExistsError:  # another setup made it meanwhile
            if link.resolve() != target.resolve():
                return f"{link} is not this kit's: left as it is (this kit's command: {target})"
    on_path = str(bin_dir) in os.environ.get("PATH", "").split(os.pathsep)
    return str(link) + (
        ""
        if on_path
        else f' (not on PATH yet: open a new terminal, or export PATH="{bin_dir}:$PATH")'
    )
