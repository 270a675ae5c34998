"""The daily verbs on the real stack: up, down, restart, status, logs, and their failures."""

import socket
import subprocess
from pathlib import Path

import psycopg2
import pytest
import redis

from devkit.envfile import env_values
from devkit.settings.model import load_settings

from phrases import line_with

pytestmark = pytest.mark.docker


def pg(stack):
    v = stack.values()
    return psycopg2.connect(
        host="127.0.0.1",
        port=stack.pg_port,
        user=v["PGUSER"],
        password=v["PGPASSWORD"],
        dbname=v["PGDATABASE"],
        connect_timeout=3,
    )


def rd(stack):
    return redis.Redis(
        host="127.0.0.1",
        port=stack.redis_port,
        password=stack.values()["REDIS_PASSWORD"],
        socket_connect_timeout=3,
    )


def test_down_keeps_data_and_up_returns_only_when_both_answer(stack):
    with pg(stack) as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS kept (v text); TRUNCATE kept; INSERT INTO kept VALUES ('x')"
        )
    conn.close()
    rd(stack).set("kept", "y")

    down = stack.invoke("down")
    assert down.returncode == 0, down.stderr
    with pytest.raises(psycopg2.OperationalError):
        pg(stack)

    up = stack.invoke("up")
    assert up.returncode == 0, up.stderr
    assert "ready" in up.stdout
    # No retry here: `up` has returned, so both must answer at once.
    conn = pg(stack)
    with conn.cursor() as cur:
        cur.execute("SELECT v FROM kept")
        assert cur.fetchall() == [("x",)]
    conn.close()
    assert rd(stack).get("kept") == b"y"


def test_down_service_stops_that_service_only(stack):
    """The old guide's `docker compose stop postgres`."""
    rd(stack).set("kept", "z")
    down = stack.invoke("down", "--service", "redis")
    assert down.returncode == 0, down.stderr
    assert down.stdout.startswith("redis stopped; data kept")
    with pytest.raises(redis.exceptions.ConnectionError):
        rd(stack).ping()
    pg(stack).close()  # postgres still answers
    up = stack.invoke("up")
    assert up.returncode == 0, up.stderr
    assert rd(stack).get("kept") == b"z"


@pytest.mark.parametrize(
    "args, cause",
    [
        (("--service", "postgress"), "unknown service 'postgress'"),
        (("--all", "--service", "redis"), "--all and --service cannot be combined"),
    ],
)
def test_down_with_a_bad_service_changes_nothing(stack, args, cause):
    result = stack.invoke("down", *args)
    assert result.returncode == 2, result.stderr
    assert f"error: {cause}\n  fix: " in result.stderr
    rd(stack).ping()
    pg(stack).close()


def test_up_when_already_up_is_quick_and_harmless(stack):
    result = stack.invoke("up")
    assert result.returncode == 0, result.stderr
    assert rd(stack).ping()


def test_exported_pg_variables_do_not_reach_compose(stack):
    """libpq's PG* variables are often exported in a shell; Compose would let them override .env.local."""
    published = subprocess.run(
        ["docker", "port", stack.container("postgres")], capture_output=True, text=True
    ).stdout
    junk = {
        "PGPORT": "1",
        "PGPASSWORD": "junk",
        "PGUSER": "junk",
        "REDIS_PASSWORD": "junk",
        "REDIS_PORT": "2",
    }
    for task in ("up", "restart"):
        result = stack.invoke(task, extra_env=junk)
        assert result.returncode == 0, result.stderr
    after = subprocess.run(
        ["docker", "port", stack.container("postgres")], capture_output=True, text=True
    ).stdout
    assert after == published
    with pg(stack):
        pass
    assert rd(stack).ping()


def started_at(container: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", "{{.State.StartedAt}}", container],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_restart_one_service_waits_for_it(stack):
    before = started_at(stack.container("redis"))
    result = stack.invoke("restart", "--service", "redis")
    assert result.returncode == 0, result.stderr
    assert "redis 7." in result.stdout
    assert started_at(stack.container("redis")) != before
    assert rd(stack).ping()


def test_status_shows_state_version_address_and_volume(stack):
    result = stack.invoke("status")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│")}
    assert "running" in lines["postgres"] and "16." in lines["postgres"]
    assert f"127.0.0.1:{stack.pg_port}" in lines["postgres"] and "MiB" in lines["postgres"]
    assert "running" in lines["redis"] and "7." in lines["redis"]
    assert f"127.0.0.1:{stack.redis_port}" in lines["redis"]


def test_logs_of_one_service(stack):
    result = stack.invoke("logs", "--service", "postgres", "--tail", "50")
    assert result.returncode == 0, result.stderr
    assert "database system is ready to accept connections" in result.stdout
    assert "redis-1" not in result.stdout


def test_unknown_service_is_a_usage_error(stack):
    result = stack.invoke("logs", "--service", "mysql")
    assert result.returncode == 2
    assert "unknown service 'mysql'" in result.stderr and "postgres, redis" in result.stderr


def test_daemon_unreachable_gives_the_start_command(stack, tmp_path):
    result = stack.invoke("down", extra_env={"DOCKER_HOST": f"unix://{tmp_path}/no-daemon.sock"})
    assert result.returncode == 1
    assert "error: the Docker daemon is not running" in result.stderr
    assert "fix:" in result.stderr and "docker" in result.stderr.split("fix:")[1]
    assert rd(stack).ping()


def test_up_refuses_a_taken_port_and_starts_nothing(stack, held_port, tmp_path):
    """A second app whose PostgreSQL port is held by another process."""
    project = "devkit-test-port"
    settings = load_settings(
        {
            "project_name": project,
            "app_dir": str(tmp_path),
            "postgres_port": held_port,
            "redis_port": held_port + 1,
        }
    )
    values = env_values(settings, {}) | stack_images(stack)
    (tmp_path / ".env.local").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {
        "INVOKE_DEVKIT_PROJECT_NAME": project,
        "INVOKE_DEVKIT_APP_DIR": str(tmp_path),
        "INVOKE_DEVKIT_POSTGRES_PORT": str(held_port),
        "INVOKE_DEVKIT_REDIS_PORT": str(held_port + 1),
    }
    result = stack.invoke("up", extra_env=env)
    assert result.returncode == 1
    own_name = Path("/proc/self/comm").read_text().strip()  # python, or pytest when run so
    line_with(result.stderr, f"port {held_port} ", "postgres", "taken", own_name)
    listed = subprocess.run(
        ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={project}", "-q"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert listed.strip() == ""


def test_missing_image_points_to_images_build(stack, tmp_path, remove_stack):
    project = "devkit-test-noimage"
    pg_port, redis_port = free_port(), free_port()
    settings = load_settings(
        {
            "project_name": project,
            "app_dir": str(tmp_path),
            "postgres_port": pg_port,
            "redis_port": redis_port,
        }
    )
    values = (
        env_values(settings, {})
        | stack_images(stack)
        | {"DEVKIT_POSTGRES_IMAGE": "devkit/postgres:no-such-tag"}
    )
    env_file = tmp_path / ".env.local"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env = {
        "INVOKE_DEVKIT_PROJECT_NAME": project,
        "INVOKE_DEVKIT_APP_DIR": str(tmp_path),
        "INVOKE_DEVKIT_POSTGRES_PORT": str(pg_port),
        "INVOKE_DEVKIT_REDIS_PORT": str(redis_port),
    }
    try:
        result = stack.invoke("up", extra_env=env)
        assert result.returncode == 1
        line_with(result.stderr, "devkit/postgres:no-such-tag", "not present")
        assert "devkit images.build" in result.stderr
    finally:
        remove_stack(env_file)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stack_images(stack):
    values = stack.values()
    return {key: values[key] for key in ("DEVKIT_POSTGRES_IMAGE", "DEVKIT_REDIS_IMAGE")}


class LateDaemon:
    """A Docker socket that starts answering `delay` s from now: a proxy to this machine's
    daemon, opened late, as a daemon that is still starting (WSL's boot command ran it a moment
    ago) looks to its clients. Nothing of the real daemon is stopped."""

    def __init__(self, path: Path, delay: float):
        import threading

        self.path, self.stopped = path, threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(delay,), daemon=True)
        self.thread.start()

    def _serve(self, delay: float) -> None:
        import threading

        if self.stopped.wait(delay):
            return
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(self.path))
            server.listen(16)
            server.settimeout(0.2)
            while not self.stopped.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                upstream = socket.socket(socket.AF_UNIX)
                upstream.connect("/var/run/docker.sock")
                for source, target in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def test_up_waits_for_a_daemon_that_is_starting(stack, tmp_path):
    """F5 on a WSL distribution that just started: dockerd runs but does not answer yet. `up`
    waits for it (bounded, saying so) instead of failing at once with "not running"."""
    assert stack.invoke("down").returncode == 0  # its containers are not up yet either
    late = LateDaemon(tmp_path / "docker.sock", delay=3)
    try:
        result = stack.invoke("up", extra_env={"DOCKER_HOST": f"unix://{tmp_path}/docker.sock"})
    finally:
        late.close()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "waiting for the Docker daemon to start" in result.stderr
    assert " ready (" in result.stdout
    with pg(stack) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
