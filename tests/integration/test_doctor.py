"""`devkit doctor` against real faults: each is created for real, then undone."""

import socket
import subprocess
import textwrap
from pathlib import Path

import pytest

from phrases import line_with

pytestmark = pytest.mark.docker


def verdict(output: str, check: str) -> str:
    """The doctor's row for `check` (its lines joined)."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(check + " "):
            row = [line]
            for more in lines[i + 1 :]:
                if not more.startswith(" "):
                    break
                row.append(more.strip())
            return " ".join(" ".join(row).split())
    raise AssertionError(f"no {check!r} row in:\n{output}")


def test_a_healthy_stack_passes(stack):
    result = stack.invoke("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("daemon", "compose", "env file", "postgres login", "redis login", "migrations"):
        assert verdict(result.stdout, check).split()[len(check.split())] == "OK"
    assert "All checks passed." in result.stdout


@pytest.fixture
def redis_stopped(stack):
    subprocess.run(["docker", "stop", stack.container("redis")], capture_output=True, check=True)
    yield
    assert stack.invoke("up").returncode == 0


def test_a_stopped_container_fails(stack, redis_stopped):
    result = stack.invoke("doctor")
    assert result.returncode == 1
    row = verdict(result.stdout, "redis container")
    assert "FAIL exited" in row and "devkit up" in row
    assert "1 check(s) failed: redis container" in result.stderr


def test_a_port_taken_by_another_process_is_named(stack, redis_stopped):
    own_name = Path("/proc/self/comm").read_text().strip()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", stack.redis_port))
        squatter.listen()
        result = stack.invoke("doctor")
    assert result.returncode == 1
    row = verdict(result.stdout, f"port {stack.redis_port}")
    assert "FAIL" in row and f"taken by {own_name}" in row
    assert f"INVOKE_DEVKIT_REDIS_PORT={stack.redis_port + 1}" in row


def test_daemon_not_answering_fails_with_the_start_hint(stack):
    result = stack.invoke("doctor", extra_env={"DOCKER_HOST": "unix:///tmp/devkit-no-daemon.sock"})
    assert result.returncode == 1
    row = verdict(result.stdout, "daemon")
    assert "FAIL the Docker daemon is not running" in row
    assert "devkit setup" in row or "systemctl" in row


def test_a_wrong_password_in_env_local_is_found_and_repaired(stack):
    original = stack.env_file.read_text()
    password = stack.values()["PGPASSWORD"]
    try:
        stack.env_file.write_text(original.replace(password, "Another-Password-123456"))
        found = stack.invoke("doctor")
        assert found.returncode == 1
        row = verdict(found.stdout, "postgres login")
        line_with(row, "FAIL", "password", ".env.local")
        assert "devkit doctor --repair" in row
        refused = stack.invoke("doctor", "--repair")  # no terminal and no --yes: nothing changes
        assert refused.returncode == 2 and "--yes" in refused.stderr
        repaired = stack.invoke("doctor", "--repair", "--yes")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "password on the server is .env.local's again" in repaired.stdout
    finally:
        stack.env_file.write_text(original)
        back = stack.invoke("doctor", "--repair", "--yes")
    assert back.returncode == 0, back.stdout + back.stderr


def test_a_pending_migration_fails_until_migrated(stack):
    versions = stack.app_dir / "migrations" / "versions"
    pending = versions / "d4d4d4d4d4d4_pending.py"
    pending.write_text(
        textwrap.dedent(
            """\
            revision = "d4d4d4d4d4d4"
            down_revision = "c1104acd2fa6"
            branch_labels = None
            depends_on = None


            def upgrade():
                pass


            def downgrade():
                pass
            """
        )
    )
    try:
        result = stack.invoke("doctor")
        assert result.returncode == 1
        row = verdict(result.stdout, "migrations")
        line_with(row, "FAIL", "c1104acd2fa6", "d4d4d4d4d4d4")
        assert "devkit db.migrate" in row
        assert stack.invoke("db.migrate", "--no-backup").returncode == 0
        assert stack.invoke("doctor").returncode == 0
    finally:
        stack.invoke("db.downgrade", "c1104acd2fa6", "--no-backup")
        pending.unlink()
