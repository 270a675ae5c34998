"""Every documented everyday command's output, as users pipe and read it: output cut short by
`head`, psql's exit codes, the hints the errors give, and .env.local values written as Compose
reads them."""

import dataclasses
import re
from pathlib import Path

import pytest

from phrases import line_with

pytestmark = pytest.mark.docker


def piped(stack, command: str, reader: str, ready: Path) -> tuple[str, str, int]:
    """`invoke COMMAND | READER` in bash: what the reader printed, the kit's stderr, its exit code.

    The kit starts only once the reader has created READY, so what the reader does first (close
    its end of the pipe) is done before the kit writes a byte, however busy the machine is."""
    import os
    import subprocess
    import sys

    invoke = Path(sys.executable).with_name("invoke")
    kit = Path(__file__).resolve().parents[2]
    shell = subprocess.run(
        ["bash", "-c", f"{{ {{ until [ -e {ready} ]; do sleep 0.02; done; "
         f"exec {invoke} --search-root {kit} {command} 2>&3; }} | {reader.format(ready=ready)}; "
         "echo rc=${PIPESTATUS[0]}; } 3>&2"],
        capture_output=True, text=True, env={**os.environ, **stack.env}, check=False,
    )  # fmt: skip
    return shell.stdout, shell.stderr, int(shell.stdout.rsplit("rc=", 1)[1])


# `head -3` as users type it; and a reader that is gone before the kit writes a byte (what
# `head` is, when it has its lines before the kit is done): the same end either way. Each
# creates {ready} when the kit may start (see `piped`).
READERS = {
    "head": "{{ : > {ready}; exec head -3; }}",
    "gone": "{{ exec <&-; : > {ready}; sleep 2; }}",
}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("command", ["db.list", "--help db.backup", "--list"])
def test_output_piped_into_head_ends_without_a_traceback(stack, tmp_path, command, reader):
    # Enough output that `head` is gone before the kit is done writing.
    for n in range(400):
        (tmp_path / f"backup_20260101_{n:06d}.backup.gz").write_bytes(b"x")
    stack.env["INVOKE_DEVKIT_BACKUP_DIR"] = str(tmp_path)
    try:
        shown, errors, code = piped(stack, command, READERS[reader], tmp_path / "ready")
    finally:
        stack.env.pop("INVOKE_DEVKIT_BACKUP_DIR")
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors
    # Nothing but the line naming the app (set by INVOKE_DEVKIT_APP_DIR, not the directory's).
    assert [line for line in errors.splitlines() if not line.startswith("devkit: app ")] == []
    if reader == "head":
        assert len(shown.strip().splitlines()) == 4  # three lines, and rc=
        assert code in (0, 141)  # 141: the reader went away first, as for `yes | head`
    else:
        assert code == 141


def test_piped_sql_that_fails_exits_1_with_a_cause(stack):
    failed = stack.invoke("db.psql", stdin="SELECT 1;\nSELECT 1/0;\nSELECT 2;\n")
    assert failed.returncode == 1, failed.stdout + failed.stderr  # was 3, not a documented code
    assert "division by zero" in failed.stderr
    line_with(failed.stderr, "error:", "first failing statement")
    assert "fix: " in failed.stderr


def test_psql_refuses_a_database_url_naming_another_database(stack):
    # The README says db.* tasks honour DATABASE_URL: psql must not silently open another one.
    other = stack.invoke(
        "db.psql", "-c", "SELECT 1",
        extra_env={"DATABASE_URL": "postgresql://u:secret-pw@db.example.com:5432/other"},
    )  # fmt: skip
    assert other.returncode == 1
    assert "db.psql works only on this machine's stack" in other.stderr
    assert "db.example.com" in other.stderr and "secret-pw" not in other.stderr
    same = stack.invoke(
        "db.psql", "-c", "SELECT 1", extra_env={"DATABASE_URL": stack.values()["DATABASE_URL_SYNC"]}
    )
    assert same.returncode == 0, same.stderr


def test_a_password_with_an_inline_comment_reads_as_compose_reads_it(stack):
    """`PGPASSWORD=pw # note`: Compose (and the server) take `pw`; the kit did `pw # note`."""
    original = stack.env_file.read_text()
    try:
        stack.env_file.write_text(
            re.sub(r"^(PGPASSWORD=.*)$", r"\1 # set by setup", original, flags=re.M)
        )
        one = stack.invoke("db.psql", "-c", "SELECT 'authenticated'")
        assert one.returncode == 0, one.stderr
        assert "authenticated" in one.stdout
    finally:
        stack.env_file.write_text(original)


def test_hints_name_commands_that_exist(stack):
    """The time-out hint names `devkit logs --service postgres` (was `invoke logs postgres`, not
    a valid command), and the rejected-password hint names `doctor --repair`, which keeps the data."""
    from devkit.envfile import load_stack
    from devkit.errors import NotReady
    from devkit.readiness import wait_ready
    from devkit.settings.table import DEFAULTS

    # Every setting, as Invoke's config holds them (was: the ones recorded then, by hand).
    real = load_stack(
        {**DEFAULTS, "app_dir": str(stack.app_dir), "project_name": stack.project,
         "postgres_port": stack.pg_port, "redis_port": stack.redis_port, "ready_timeout": 5}
    )  # fmt: skip
    wrong = dataclasses.replace(
        real, passwords={**real.passwords, "postgres": "not-the-password-0000"}
    )
    with pytest.raises(NotReady) as rejected:
        wait_ready(wrong, 5)
    assert "devkit doctor --repair" in rejected.value.hint
    closed = dataclasses.replace(real, ports={**real.ports, "postgres": free_closed_port()})
    with pytest.raises(NotReady) as timed_out:
        wait_ready(closed, 0.5)
    hint = timed_out.value.hint
    assert "`devkit logs --service postgres`" in hint
    command = hint.split("`")[1].split()
    assert command[:2] == ["devkit", "logs"]
    shown = stack.invoke(*command[1:], "--tail", "1")
    assert shown.returncode == 0, shown.stderr


def free_closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_row_longer_than_readers_take_is_named_at_backup_time(stack, tmp_path):
    """Nothing lost to the line limit: db.backup names the setting its restore needs, and with
    it the file verifies and restores whole."""
    conn = stack.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE big_rows (id int PRIMARY KEY, body text)")
            cur.execute(
                "INSERT INTO big_rows VALUES (1, repeat(E'ab\\ncd\"', 1500000))"
            )  # 10.5 MB as COPY text: "ab\\ncd\"" is 7 bytes (as JSON, 12 MiB)
        written = stack.invoke("db.backup", "--output-dir", str(tmp_path))
        assert written.returncode == 0, written.stderr
        line_with(written.stderr, "warning:", "11 MiB")
        line_with(written.stderr, "devkit.backup_max_line_mb", "11")
        path = written.stdout.strip().splitlines()[-1]
        refused = stack.invoke("db.verify", path)
        assert refused.returncode == 1 and "devkit.backup_max_line_mb" in refused.stderr
        allowed = {"INVOKE_DEVKIT_BACKUP_MAX_LINE_MB": "11"}
        assert stack.invoke("db.verify", path, extra_env=allowed).returncode == 0
        with conn.cursor() as cur:
            cur.execute("UPDATE big_rows SET body = 'changed'")
        restored = stack.invoke("db.restore", path, "--yes", "--no-backup", extra_env=allowed)
        assert restored.returncode == 0, restored.stdout + restored.stderr
        with conn.cursor() as cur:
            cur.execute("SELECT md5(body) = md5(repeat(E'ab\\ncd\"', 1500000)) FROM big_rows")
            assert cur.fetchone() == (True,)
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS big_rows")
        conn.close()


def test_apps_reads_whole_on_an_80_column_terminal(stack):
    """`devkit apps` in an 80-column terminal folded an app's path over five lines of a table:
    one block per stack there, each path on one line."""
    shown, code = stack.on_terminal("apps", extra_env={"COLUMNS": "80"})
    assert code == 0, shown
    lines = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line).rstrip() for line in shown.splitlines()]
    assert str(stack.app_dir) in lines, shown
    assert not any("┃" in line or "│" in line for line in lines), shown
    wide, code = stack.on_terminal("apps", extra_env={"COLUMNS": "200"})
    assert code == 0 and "┃" in wide  # the table where it fits
