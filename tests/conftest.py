"""Shared fixtures: a real stack set up once per session, isolated from the developer's own.

The session's stack has its own compose project name, ports and app directory, so running the
suite never touches the stack a developer works with.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import pty
import select
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

KIT_ROOT = Path(__file__).resolve().parent.parent
INVOKE = str(Path(sys.executable).with_name("invoke"))
# Each pytest-xdist worker has a stack of its own (gw0, gw1, ...).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
TEST_PROJECT = "devkit-test" + (f"-{WORKER}" if WORKER else "")
SAMPLE_APP = KIT_ROOT / "examples" / "sample_app"
# The kit's state that a test's setup writes outside its app (the app setup last acted on, the
# `devkit` command's link) goes to this run's own directory (devkit/paths.py), never the user's
# .devkit/state.json or ~/.local/bin: nothing to put back, no lock needed for it.
RUN_STATE = Path(tempfile.mkdtemp(prefix="devkit-test-state-"))
os.environ.setdefault("DEVKIT_STATE_FILE", str(RUN_STATE / "state.json"))
os.environ.setdefault("DEVKIT_BIN_DIR", str(RUN_STATE / "bin"))
atexit.register(shutil.rmtree, RUN_STATE, True)
# Taken by a test that changes the machine (marker `machine`) while it runs, and by a session's
# setup. Exclusive for a change other setups cannot run beside (the engine and its users, the
# images rebuilt); shared, with
# `machine(shared=True)`, for a test that only runs `setup` as a user does, which may run beside
# another such test or a session's setup (apt and usermod wait for each other's locks).
MACHINE_LOCK = Path("/tmp/devkit-test-machine.lock")


@contextlib.contextmanager
def machine_lock(shared: bool = False):
    with MACHINE_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pytest_itemcollected(item):
    """The quick lane (`-m "unit and not machine"`) runs nothing that needs the machine: a unit
    test may not use the session's stack (its setup installs and starts things) nor be marked
    `machine`."""
    if item.get_closest_marker("unit") and (
        item.get_closest_marker("machine") or "stack" in item.fixturenames
    ):
        raise pytest.UsageError(f"{item.nodeid}: a unit test may not change the machine")


@pytest.fixture(autouse=True)
def _one_machine_change_at_a_time(request):
    """A test marked `machine` holds the machine lock while it runs, so that no other worker's
    such test or session setup runs meanwhile (the session's stack, a fixture of a wider scope,
    is set up before this runs); what its setups change outside the app is put back after."""
    marker = request.node.get_closest_marker("machine")
    if marker:
        with machine_lock(shared=marker.kwargs.get("shared", False)):
            yield
    else:
        yield


# The product's checks of a host (devkit/checks), run by tests/infra against the session's stack.
pytest_plugins = ["devkit.checks.plugin"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def invoke(
    *args: str, env: dict[str, str] | None = None, timeout: float = 900, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `invoke ARGS` as a user would, from the kit's directory; no terminal, `stdin` piped."""
    return subprocess.run(
        [INVOKE, "--search-root", str(KIT_ROOT), *args],
        cwd=KIT_ROOT,
        env={**os.environ, **(env or {})},
        **({"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


DEVKIT = str(Path(sys.executable).with_name("devkit"))


def devkit(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run the `devkit` command as a user does, in `cwd` (their app's directory, say): none of
    the kit's settings from the environment (INVOKE_DEVKIT_*) but those in `env`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("INVOKE_DEVKIT_")}
    return subprocess.run(
        [DEVKIT, *args],
        cwd=cwd,
        env={**environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(name="run_devkit")
def run_devkit_fixture():
    return devkit


CURSOR_QUERY = b"\x1b[6n"


def on_terminal(
    *args: str, env: dict[str, str], inputs: tuple[bytes, ...] = (), timeout: float = 90
) -> tuple[str, int]:
    """Run an invoke task on a pseudo-terminal, as a user at a keyboard: each input is typed
    once the output has gone quiet. Like a terminal emulator, it answers a cursor position query
    (ESC[6n, "device status report"). Returns everything the terminal showed, and the exit code."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [INVOKE, "--search-root", str(KIT_ROOT), *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "120", "LINES": "40", **env},
        start_new_session=True,
    )
    os.close(terminal)
    output, pending = b"", list(inputs)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.7)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the terminal closed: the process has exited
                    break
                if not chunk:
                    break
                output += chunk
                for _ in range(chunk.count(CURSOR_QUERY)):
                    os.write(controller, b"\x1b[1;1R")
            elif pending:
                os.write(controller, pending.pop(0))
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise AssertionError(f"timed out; the terminal showed: {output[-3000:]!r}")
    finally:
        os.close(controller)
    return output.decode(errors="replace"), process.wait(10)


@contextlib.contextmanager
def _polling(once, pause: float):
    """Call `once()` over and over in a thread while the block runs, `pause` seconds apart;
    yields a list whose length is the number of rounds so far. The pause bounds what the watch
    can miss (a state that lasts less than a round and a pause); without one, the thread kept
    a core busy and slowed the other test worker (2 cores)."""
    rounds: list[None] = []
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            once()
            rounds.append(None)
            time.sleep(pause)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield rounds
    finally:
        stop.set()
        thread.join()


def command_lines() -> Iterator[bytes]:
    """Every process's command line now (/proc/*/cmdline, its words NUL-separated); a process
    that ends while it is read is left out."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                yield f.read()
        except OSError:
            continue


@contextlib.contextmanager
def argv_watch(secrets: list[str]):
    """While the block runs, read every process's command line (/proc/*/cmdline) over and over;
    yields the list of those that held one of `secrets` (as the program name, never the secret).
    The machine's /proc also shows the processes of its containers (nested test hosts included)."""
    wanted = [secret.encode() for secret in secrets if secret]
    leaks: list[str] = []

    def once() -> None:
        for argv in command_lines():
            if any(secret in argv for secret in wanted):
                leaks.append(argv.split(b"\0")[0].decode(errors="replace"))

    # A round reads a few hundred small files (about 1 ms): a process is seen unless it lives
    # less than about 3 ms (a docker, ssh or psql command lives far longer).
    with _polling(once, pause=0.002) as rounds:
        yield leaks
    assert len(rounds) > 10, "the watcher barely ran"


def sql(url: str, query: str) -> list[tuple]:
    """QUERY on its own autocommit connection to URL; the rows it returned ([] for none)."""
    import psycopg2

    conn = psycopg2.connect(url, connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def remove_stack(env_file: Path) -> None:
    """`docker compose down --volumes` for the project of a test's env file; then whatever of
    the project's containers and volumes is still there, found by Compose's label (a stack
    whose start failed half-way once left a created container and a volume behind on CI)."""
    subprocess.run(
        ["docker", "compose", "--env-file", str(env_file),
         "-f", str(KIT_ROOT / "compose" / "compose.yaml"), "down", "--volumes"],
        capture_output=True,
        check=False,
    )  # fmt: skip
    from devkit.envfile import read_env_file

    project = read_env_file(env_file).get("DEVKIT_PROJECT_NAME") if env_file.exists() else None
    if project:
        remove_project(project)


def remove_project(project: str) -> None:
    """The containers and volumes Compose labelled with PROJECT."""
    label = f"label=com.docker.compose.project={project}"
    for listing, removal in (
        (["ps", "-a", "-q"], ["rm", "-f", "-v"]),
        (["volume", "ls", "-q"], ["volume", "rm", "-f"]),
    ):
        found = ["docker", *listing, "--filter", label]
        left = subprocess.run(found, capture_output=True, text=True, check=False).stdout.split()
        if left:
            subprocess.run(["docker", *removal, *left], capture_output=True, check=False)


def forget_stack(project: str) -> None:
    """Remove what the kit keeps outside the app for a test's project: the admin's password, the
    previous .env.local, the snapshots' copies of Redis's keys."""
    from types import SimpleNamespace

    from devkit.admin_password import admin_env_file
    from devkit.paths import state_dir
    from devkit.snapshot_catalog import redis_dir

    admin_env_file(project).unlink(missing_ok=True)
    (state_dir() / f"env-backups/{project}.env.local.previous").unlink(missing_ok=True)
    shutil.rmtree(redis_dir(SimpleNamespace(project=project)), ignore_errors=True)
    for record in (f"branches/{project}.json", f"pulls/{project}.json"):
        (state_dir() / record).unlink(missing_ok=True)


def remove_app_stack(app_dir: Path) -> None:
    """remove_stack and forget_stack for the app in APP_DIR (nothing when it has no stack)."""
    from devkit.envfile import read_env_file

    env_file = app_dir / ".env.local"
    if not env_file.exists():
        return
    project = read_env_file(env_file).get("DEVKIT_PROJECT_NAME")
    remove_stack(env_file)
    if project:
        forget_stack(project)


@contextlib.contextmanager
def private_watch(path: Path, size: int = 0):
    """While the block runs, stat `path` over and over; yields the list of modes it had while it
    held more than `size` bytes and others could read it (a secret exposed for a moment)."""
    exposed: list[int] = []

    def once() -> None:
        try:
            st = path.stat()
        except FileNotFoundError:
            return
        if st.st_size > size and st.st_mode & 0o077:
            exposed.append(st.st_mode & 0o777)

    # About 3,000 rounds a second at a tenth of a core: an exposure of 0.3 ms is seen.
    with _polling(once, pause=0.0002):
        yield exposed


@pytest.fixture(name="private_watch")
def private_watch_fixture():
    return private_watch


@pytest.fixture(name="remove_stack")
def remove_stack_fixture():
    """remove_stack(env_file, project): the containers and volumes, and what the kit kept."""

    def remove(env_file: Path, project: str | None = None) -> None:
        remove_stack(env_file)
        if project:
            forget_stack(project)

    return remove


@pytest.fixture(name="argv_watch")
def argv_watch_fixture():
    return argv_watch


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's threaded S3 server on loopback (a real HTTP S3 endpoint), for the module."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(name="run_invoke")
def run_invoke_fixture():
    """`invoke(*args, env=...)` for tests in subfolders (whose conftest shadows this module)."""
    return invoke


@pytest.fixture(name="free_port", scope="session")
def free_port_fixture():
    return free_port


@dataclass
class Operator:
    """Runs the kit's tasks as a person does, with `env` added to this process's environment."""

    env: dict[str, str]

    def invoke(
        self,
        *args: str,
        extra_env: dict[str, str] | None = None,
        timeout: float = 900,
        stdin: str | None = None,
    ):
        return invoke(*args, env={**self.env, **(extra_env or {})}, timeout=timeout, stdin=stdin)

    def on_terminal(
        self, *args: str, inputs: tuple[bytes, ...] = (), extra_env=None, timeout: float = 90
    ):
        return on_terminal(
            *args, env={**self.env, **(extra_env or {})}, inputs=inputs, timeout=timeout
        )


@pytest.fixture(scope="session")
def operator() -> Operator:
    """The kit's tasks with no setting of the suite's own: for what needs no stack here (the fleet:
    provision, verify)."""
    return Operator(env={})


@dataclass
class SessionStack(Operator):
    app_dir: Path
    project: str
    pg_port: int
    redis_port: int
    first_setup: subprocess.CompletedProcess[str]

    @property
    def env_file(self) -> Path:
        return self.app_dir / ".env.local"

    def values(self) -> dict[str, str]:
        from devkit.envfile import read_env_file

        return read_env_file(self.env_file)

    def connect(self):
        """An autocommit connection to the stack's app database, as the app user."""
        import psycopg2

        conn = psycopg2.connect(self.values()["DATABASE_URL_SYNC"])
        conn.autocommit = True
        return conn

    def admin_url(self, database: str | None = None) -> str:
        """The stack's database (or `database`) as the cluster's admin (superuser)."""
        from urllib.parse import quote

        from devkit.admin_password import read_admin_password

        password = read_admin_password(self.project)
        assert password, "setup keeps the admin's password"
        values = self.values()
        return (
            f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{self.pg_port}/"
            f"{database or values['PGDATABASE']}"
        )

    def admin_connect(self, database: str | None = None):
        import psycopg2

        conn = psycopg2.connect(self.admin_url(database))
        conn.autocommit = True
        return conn

    def drop_automatic_snapshots(self) -> None:
        """The snapshots db.migrate, db.restore and db.reset kept (a test's undo is done)."""
        import re

        listed = self.invoke("db.snapshots").stdout
        for name in re.findall(r"^(\S+) .* automatic \(", listed, re.M):
            assert self.invoke("db.snapshot.drop", name, "--yes").returncode == 0

    def container(self, service: str) -> str:
        return f"{self.project}-{service}-1"

    def fingerprint(self) -> str:
        """Every row of every table of the app's database, and the sequences, as one hash."""
        import hashlib

        conn = self.admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables "
                    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
                )
                digest = hashlib.sha256()
                for (table,) in cur.fetchall():
                    cur.execute(
                        f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
                    )
                    digest.update(f"{table}={cur.fetchone()[0]}\n".encode())
                cur.execute(
                    "SELECT string_agg(format('%s=%s', sequencename, last_value), ',' "
                    "ORDER BY sequencename) FROM pg_sequences"
                )
                digest.update(str(cur.fetchone()[0]).encode())
                return digest.hexdigest()
        finally:
            conn.close()


# The app's contract (docs/ARCHITECTURE.md), written here independently of the code under test.
CONTRACT_KEYS = [
    "DATABASE_URL",
    "DATABASE_URL_SYNC",
    "REDIS_URL",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "DB_HOST",
    "DB_PORT",
    "DB_USER",
    "DB_PASSWORD",
    "DB_NAME",
]


@pytest.fixture(scope="session")
def contract_keys() -> list[str]:
    return CONTRACT_KEYS


# An app's existing .env.local: its own key, and a hand-written database URL.
EXISTING_ENV_LOCAL = (
    "# the app's own settings\n"
    "APP_SECRET_KEY=keep-me\n"
    "DATABASE_URL=postgresql+asyncpg://postgres:postgres@localhost:5432/app_db\n"
)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> SessionStack:
    # The kit's sample app (models, Alembic), with an .env.local of its own already there.
    app_dir = tmp_path_factory.mktemp("app")
    shutil.copytree(
        SAMPLE_APP,
        app_dir,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".env.local*", "backups", "__pycache__"),
    )
    (app_dir / ".env.local").write_text(EXISTING_ENV_LOCAL)
    pg_port, redis_port = free_port(), free_port()
    env = {
        "INVOKE_DEVKIT_PROJECT_NAME": TEST_PROJECT,
        "INVOKE_DEVKIT_APP_DIR": str(app_dir),
        "INVOKE_DEVKIT_POSTGRES_PORT": str(pg_port),
        "INVOKE_DEVKIT_REDIS_PORT": str(redis_port),
    }
    # A run killed before its teardown (CI's time limit, a restart) left this worker's stack,
    # made for an app directory of that run: setup rightly refuses a volume of another app.
    remove_project(TEST_PROJECT)
    forget_stack(TEST_PROJECT)
    try:
        with machine_lock(shared=True):
            result = invoke("setup", env=env, timeout=1800)
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        yield SessionStack(env, app_dir, TEST_PROJECT, pg_port, redis_port, result)
    finally:  # also after a failed setup: the next run starts clean
        remove_stack(app_dir / ".env.local")
        forget_stack(TEST_PROJECT)


# A developer who is not root, as on WSL2: the docker group, and sudo for setup's privileged
# steps. Their kit is their own copy of this one in their home, bootstrapped as the README says
# (scripts/devkit: a virtualenv of the system's python3 with the pinned dependencies).
PIP_CACHE = Path("/var/cache/devkit-test-pip")  # shared by the lane's runs: downloads once


@dataclass
class Developer:
    user: str
    home: Path

    @property
    def kit(self) -> Path:
        return self.home / "devkit"

    def run(
        self, argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """ARGV as this user, in `cwd`, with a login's environment (and `env`)."""
        environ = {
            "HOME": str(self.home), "USER": self.user, "LOGNAME": self.user,
            "PATH": f"{self.home}/.local/bin:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
            "PIP_CACHE_DIR": str(PIP_CACHE), **(env or {}),
        }  # fmt: skip
        return subprocess.run(
            [shutil.which("runuser"), "-u", self.user, "--", "env", "-i",
             *(f"{k}={v}" for k, v in environ.items()), *argv],
            cwd=cwd, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def devkit(
        self, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900
    ) -> subprocess.CompletedProcess[str]:
        """Their `devkit ARGS` in `cwd`."""
        return self.run([str(self.kit / ".venv" / "bin" / "devkit"), *args], cwd, env, timeout)

    def owned_by_root(self, path: Path) -> list[str]:
        found = subprocess.run(
            ["find", str(path), "-user", "root"], capture_output=True, text=True, check=False
        )
        return found.stdout.split()


@pytest.fixture(name="developer", scope="module")
def developer_fixture():
    """A new Unix user with the docker group and password-less sudo, their own copy of the kit
    bootstrapped; removed afterwards with the stacks of their apps and everything they own."""
    with developer_account() as person:
        yield person


@contextlib.contextmanager
def developer_account(user: str = "devkit-dev"):
    if not shutil.which("sudo"):  # WSL's Ubuntu has it; a bare Debian image may not
        apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=apt, capture_output=True, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "sudo"], env=apt, check=True)
    subprocess.run(["userdel", "-r", user], capture_output=True, check=False)
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", user], check=True)
    subprocess.run(["usermod", "-aG", "docker", user], check=True)
    sudoers = Path(f"/etc/sudoers.d/{user}")
    sudoers.write_text(f"{user} ALL=(ALL) NOPASSWD:ALL\n")
    sudoers.chmod(0o440)
    home = Path(f"/home/{user}")
    person = Developer(user, home)
    shutil.copytree(
        KIT_ROOT, person.kit, symlinks=True,
        ignore=shutil.ignore_patterns(".venv", ".git", ".devkit", "__pycache__", ".env.local*",
                                      "backups", ".pytest_cache", ".ruff_cache"),
    )  # fmt: skip
    PIP_CACHE.mkdir(parents=True, exist_ok=True)
    for path in (home, PIP_CACHE):
        subprocess.run(["chown", "-R", f"{user}:{user}", str(path)], check=True)
    try:
        made = person.run(["bash", str(person.kit / "scripts" / "devkit"), "--version"], home)
        assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
        yield person
    finally:
        for env_file in home.glob("*/.env.local"):
            # forget_stack too: what a kit that believed SUDO_USER kept in root's home
            remove_app_stack(env_file.parent)
        sudoers.unlink(missing_ok=True)
        subprocess.run(["userdel", "-r", user], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)
