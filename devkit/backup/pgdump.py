"""The by-hand path: pg_dump / pg_restore / psql of the stack's own container (same major as
the server, nothing needed on the host). Files: pg_dump's custom format (written here), and
plain SQL dumps (`pg_dump > backup.sql`, as teams made them by hand), recognised on restore."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from devkit.backup.files import written_backup
from devkit.envfile import Stack, subprocess_environ
from devkit.errors import DevkitError
from devkit.shells import container_of, exec_argv

CUSTOM_MAGIC = b"PGDMP"
PLAIN_MARKER = b"-- PostgreSQL database dump"


class DumpError(DevkitError):
    """pg_dump, pg_restore or psql failed."""


def kind_of(path: Path) -> str | None:
    """ "custom" or "plain" for pg_dump files, None for anything else (a JSON backup)."""
    with path.open("rb") as f:
        head = f.read(256)
    if head.startswith(CUSTOM_MAGIC):
        return "custom"
    if PLAIN_MARKER in head:
        return "plain"
    return None


def _exec(
    stack: Stack, *command: str, interactive: bool = False, connect: bool = True
) -> list[str]:
    target = ["-h", "127.0.0.1", "-U", stack.pg_user, "-d", stack.pg_database] if connect else []
    return exec_argv(
        container_of(stack, "postgres"),
        [*command, *target],
        secrets=("PGPASSWORD",),
        stdin=interactive,
        tty=False,
    )


def _env(stack: Stack) -> dict[str, str]:
    return {**subprocess_environ(), "PGPASSWORD": stack.pg_password}


def dump(stack: Stack, directory: Path) -> Path:
    """pg_dump -Fc into backup_YYYYMMDD_HHMMSS.dump: a hidden partial file, fsync, rename, mode 0600."""
    with written_backup(directory, datetime.now(UTC), ".dump") as (new, out):
        result = subprocess.run(
            _exec(stack, "pg_dump", "-Fc"),
            stdout=out,
            stderr=subprocess.PIPE,
            env=_env(stack),
            check=False,
        )
        if result.returncode != 0:
            raise DumpError(
                f"pg_dump failed: {result.stderr.decode().strip()[:300]}",
                "is the stack up (`devkit up`)?",
            )
    return new.path


_COMPLETE_PLAIN = b"-- PostgreSQL database dump complete"


def dump_intact(path: Path, stack: Stack | None) -> bool:
    """A pg_dump file that restores: custom format read by pg_restore --list in the stack's
    container when it runs (else its header and a size beyond it), plain SQL ending as pg_dump
    ends it."""
    kind = kind_of(path)
    if kind == "plain":
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 256))
            return _COMPLETE_PLAIN in f.read()
    if kind != "custom":
        return False
    if stack is not None:
        from devkit.shells import require_running

        try:
            require_running(stack, "postgres")
        except DevkitError:
            stack = None
    if stack is None:
        return path.stat().st_size > 512
    try:
        describe(stack, path)
    except DumpError:
        return False
    return True


def describe(stack: Stack, path: Path) -> str:
    """What a dump holds (pg_restore --list for custom files); raises DumpError when unreadable."""
    if kind_of(path) == "plain":
        return f"{path.name}: plain SQL dump, {path.stat().st_size} bytes"
    with path.open("rb") as f:
        result = subprocess.run(
            _exec(stack, "pg_restore", "--list", interactive=True, connect=False),
            stdin=f,
            capture_output=True,
            env=_env(stack),
            check=False,
        )
    if result.returncode != 0:
        raise DumpError(
            f"{path.name} is not a readable pg_dump file: {result.stderr.decode().strip()[:200]}",
            "use another backup",
        )
    entries = [
        line for line in result.stdout.decode().splitlines() if line and not line.startswith(";")
    ]
    tables = sum(" TABLE DATA " in line for line in entries)
    return f"{path.name}: pg_dump custom format, {len(entries)} entries, {tables} tables with data"


# pg_dump's ownership statements, one per line: `ALTER TABLE public.users OWNER TO postgres;`.
_OWNER_LINE = re.compile(rb"^ALTER [A-Z ]+ .+ OWNER TO .+;\r?\n?$")
_COPY_START = re.compile(rb"^COPY .+ FROM stdin;\r?\n?$")


def without_owners(lines: Iterable[bytes]) -> Iterator[bytes]:
    """A plain dump's lines without its `ALTER … OWNER TO …;` statements, as pg_restore
    --no-owner leaves them out of a custom one: the objects belong to the role that restores
    them (the app's), not to the dump's (`postgres` in a hand-run container). Lines of COPY data
    (up to `\\.`) pass as they are, whatever they hold."""
    in_copy = False
    for line in lines:
        if in_copy:
            in_copy = line.rstrip(b"\r\n") != b"\\."
        elif _COPY_START.match(line):
            in_copy = True
        elif _OWNER_LINE.match(line):
            continue
        yield line


def restore(stack: Stack, path: Path) -> None:
    """Replace the database's objects and data with the dump's, in one transaction, owned by the
    app's role."""
    custom = kind_of(path) == "custom"
    if custom:
        command = _exec(
            stack,
            "pg_restore",
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--no-owner",
            interactive=True,
        )
    else:
        command = _exec(
            stack, "psql", "--single-transaction", "-v", "ON_ERROR_STOP=1", "-q", interactive=True
        )
    with path.open("rb") as f, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=_env(stack),
        )
        try:
            if custom:
                shutil.copyfileobj(f, process.stdin, 1 << 20)
            else:
                process.stdin.writelines(without_owners(f))
        except BrokenPipeError:
            pass  # psql stopped at an error: its message says which
        finally:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
        code = process.wait()
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip()
    if code != 0:
        raise DumpError(
            f"restore of {path.name} failed, nothing was changed: {(message.splitlines() or ['?'])[-1][:300]}",
            "see the message; a plain dump restores into a database without those objects (see db.reset)",
        )
