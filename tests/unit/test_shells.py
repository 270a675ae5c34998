import pytest

from devkit import shells
from devkit.envfile import Stack

pytestmark = pytest.mark.unit

STACK = Stack(
    env_file=None, values={}, ready_timeout=1, project="p", host="127.0.0.1",
    ports={"postgres": 5432, "redis": 6379}, passwords={"postgres": "pw", "redis": "pw"},
    pg_user="app", pg_database="db",
)  # fmt: skip


@pytest.mark.parametrize("client", ["psql", "redis-cli"])
def test_a_terminal_session_starts_its_client_once_the_terminal_has_a_size(monkeypatch, client):
    """`docker exec -t` sets the terminal's size just after the client starts: redis-cli's line
    editor, seeing 0 columns, asked the terminal for the cursor (ESC[6n) and took the next typed
    keys as the answer (the flaky CI run). Both clients now start once `stty size` has a width
    (was: psql only)."""
    monkeypatch.setattr(shells, "_interactive", lambda: True)
    argv = shells.psql_argv(STACK, None) if client == "psql" else shells.redis_cli_argv(STACK, [])
    assert argv[:4] == ["docker", "exec", "-i", "-t"]
    shell = argv.index("sh")
    assert argv[shell + 1] == "-c" and "stty size" in argv[shell + 2]
    assert client in argv[shell + 3 :]
    assert "pw" not in argv  # the password goes through the environment


def test_one_command_needs_no_terminal(monkeypatch):
    monkeypatch.setattr(shells, "_interactive", lambda: True)
    assert shells.redis_cli_argv(STACK, ["PING"])[-3:] == ["redis-cli", "--no-auth-warning", "PING"]
