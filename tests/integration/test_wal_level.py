"""A workstation's PostgreSQL runs at wal_level minimal (the postgres_wal_level setting), and
PostgreSQL does not start below what its replication slots need: an app of its own at replica
with a physical slot, as a developer trying a standby leaves it, then `setup` at minimal."""

import subprocess

import pytest

from devkit.envfile import read_env_file

from phrases import line_with

pytestmark = [pytest.mark.docker, pytest.mark.ansible, pytest.mark.machine(shared=True)]


def psql(container: str, sql: str) -> str:
    """SQL as the cluster's superuser over the container's socket; its output."""
    return subprocess.run(
        ["docker", "exec", "-u", "postgres", container, "psql", "-X", "-At", "-c", sql],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def started_at(container: str) -> str:
    return subprocess.run(
        ["docker", "inspect", "-f", "{{.State.StartedAt}}", container],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def test_setup_refuses_a_level_the_databases_slot_would_stop_and_names_the_way_out(
    tmp_path, free_port, remove_stack, run_devkit
):
    app = tmp_path / "shop"
    app.mkdir()
    env = {
        "INVOKE_DEVKIT_POSTGRES_PORT": str(free_port()),
        "INVOKE_DEVKIT_REDIS_PORT": str(free_port()),
    }
    replica = {**env, "INVOKE_DEVKIT_POSTGRES_WAL_LEVEL": "replica"}

    def setup(with_env):
        return run_devkit("setup", "--no-vscode", cwd=app, env=with_env, timeout=900)

    project = None
    try:
        made = setup(replica)
        assert made.returncode == 0, made.stdout[-3000:] + made.stderr
        project = read_env_file(app / ".env.local")["DEVKIT_PROJECT_NAME"]
        container = f"{project}-postgres-1"
        psql(container, "SELECT pg_create_physical_replication_slot('standby_1')")

        # Running: asked before anything changes.
        before, started = (app / ".env.local").read_bytes(), started_at(container)
        refused = setup(env)
        assert refused.returncode == 1, refused.stdout[-3000:]
        line_with(
            refused.stderr,
            'PostgreSQL would not start at wal_level minimal: the physical replication slot '
            '"standby_1" needs replica',
        )  # fmt: skip
        fix = line_with(refused.stderr, "fix: ", "devkit.postgres_wal_level: replica")
        assert f"docker exec -u postgres {container} psql -c" in fix
        assert "pg_drop_replication_slot('standby_1')" in fix
        assert (app / ".env.local").read_bytes() == before
        assert started_at(container) == started
        assert psql(container, "SHOW wal_level") == "replica"

        # Stopped: it cannot be asked, and stops as it starts; setup names the server's reason.
        subprocess.run(["docker", "stop", container], capture_output=True, check=True)
        stopped = setup(env)
        assert stopped.returncode == 1, stopped.stdout[-3000:]
        line_with(
            stopped.stderr,
            f"PostgreSQL in {container} stops as it starts: physical replication slot "
            '"standby_1" exists, but wal_level < replica',
        )  # fmt: skip
        line_with(stopped.stderr, "fix: set devkit.postgres_wal_level to the level it names")

        # The way out it named: the level the slot needs, and nothing lost.
        back = setup(replica)
        assert back.returncode == 0, back.stdout[-3000:] + back.stderr
        assert psql(container, "SELECT slot_name FROM pg_replication_slots") == "standby_1"
        # The other way out: the slot dropped, minimal.
        psql(container, "SELECT pg_drop_replication_slot('standby_1')")
        done = setup(env)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr
        assert psql(container, "SELECT current_setting('wal_level') || ' ' || "
                               "current_setting('max_wal_senders')") == "minimal 0"  # fmt: skip
    finally:
        if (app / ".env.local").exists():
            remove_stack(app / ".env.local", project)
