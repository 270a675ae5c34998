"""The by-hand path: pg_dump / pg_restore of the stack's own container (same major as the server,
nothing needed on the host), run there as `nobody`. Files: pg_dump's custom format (written
here), and plain SQL dumps (`pg_dump > backup.sql`, as teams made them by hand), recognised on
restore and loaded on the app's own login without psql: a dump's psql meta-commands (`\\!`, `\\o`
…) are refused, never run."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
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
    # As `nobody`: a tool reading a file it was handed runs with no right in the container (the
    # server's data belongs to postgres, and its local socket trusts whoever reaches it).
    return exec_argv(
        container_of(stack, "postgres"),
        [*command, *target],
        secrets=("PGPASSWORD",),
        stdin=interactive,
        tty=False,
        user="nobody",
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
    """What a dump holds (pg_restore --list for custom files, a plain dump read through);
    raises DumpError when unreadable, or when a plain one holds a psql meta-command."""
    if kind_of(path) == "plain":
        tables = check_plain(path)
        return (
            f"{path.name}: plain SQL dump, {path.stat().st_size} bytes, {tables} tables with data"
        )
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
# The meta-commands pg_dump itself writes since PostgreSQL 17.6 / 16.10 (CVE-2025-8714): they
# guard psql, which the kit does not use; nothing else of psql's is ever accepted.
_PG_DUMP_META = re.compile(rb"^\\(restrict|unrestrict) [A-Za-z0-9]+\s*$")


# One token of SQL as psql's lexer sees it (psqlscan.l), outside any quote: what opens a quoted
# part or a comment, an identifier (whose `$` never opens a dollar quote), or a backslash, which
# psql reads as the start of a meta-command wherever it stands.
_TOKEN = re.compile(
    rb"--|/\*|[eE]'|'|\"|\$(?:[A-Za-z_\x80-\xff][A-Za-z_0-9\x80-\xff]*)?\$"
    rb"|[A-Za-z_\x80-\xff][A-Za-z_0-9$\x80-\xff]*|[0-9]+|\\"
)

_ESCAPE_STRING_END = re.compile(rb"\\.|'")
_COMMENT_MARK = re.compile(rb"/\*|\*/")


class _Lexer:
    """Where a plain dump's SQL has a psql meta-command: a backslash outside quoted strings,
    quoted identifiers, dollar quotes and comments (standard_conforming_strings on, as pg_dump
    sets it). The kit never hands a dump to psql; this names the line of one that would have
    run a command there."""

    def __init__(self) -> None:
        self.state = b""  # b"", b"'", b"e'", b'"', b"/*", or a dollar quote's tag
        self.depth = 0  # nested /* */ comments

    def meta_command(self, line: bytes) -> bytes | None:
        """The meta-command LINE holds (its text from the backslash), or None."""
        at = 0
        while at < len(line):
            if self.state in (b"'", b'"'):
                end = line.find(self.state, at)
                if end < 0:
                    return None
                at, self.state = end + 1, b""
            elif self.state == b"e'":
                found = _ESCAPE_STRING_END.search(line, at)
                if found is None:
                    return None
                at = found.end()
                if found[0] == b"'":
                    self.state = b""
            elif self.state == b"/*":
                found = _COMMENT_MARK.search(line, at)
                if found is None:
                    return None
                at = found.end()
                self.depth += 1 if found[0] == b"/*" else -1
                if self.depth == 0:
                    self.state = b""
            elif self.state:
                end = line.find(self.state, at)
                if end < 0:
                    return None
                at, self.state = end + len(self.state), b""
            else:
                found = _TOKEN.search(line, at)
                if found is None:
                    return None
                token, at = found[0], found.end()
                if token == b"\\":
                    return line[found.start() :].rstrip(b"\r\n")
                if token == b"--":
                    return None
                if token == b"/*":
                    self.state, self.depth = b"/*", 1
                elif token in (b"'", b'"'):
                    self.state = token
                elif token in (b"e'", b"E'"):
                    self.state = b"e'"
                elif token.startswith(b"$"):
                    self.state = token
        return None


@dataclass(frozen=True)
class _Sql:
    line: int  # of its first line in the file
    text: bytes


@dataclass(frozen=True)
class _Copy:
    line: int
    statement: bytes  # COPY … FROM stdin
    rows: Iterator[bytes]  # its data lines, read from the file as they are consumed


def plain_parts(lines: Iterable[bytes], name: str) -> Iterator[_Sql | _Copy]:
    """A plain dump as SQL to run and COPY data to send, in file order, without its
    `ALTER … OWNER TO …;` lines (outside COPY data), as pg_restore --no-owner leaves them out of
    a custom dump: the objects belong to the role that restores them (the app's), not to the
    dump's (`postgres` in a hand-run container). A psql meta-command anywhere outside COPY data raises
    DumpError naming its line: a dump runs no command, of psql's or the shell's. Each _Copy's rows
    must be read before the next part is asked for."""
    numbered = enumerate(lines, 1)
    lexer = _Lexer()
    chunk: list[bytes] = []
    start = 0
    for number, line in numbered:
        if not lexer.state and _COPY_START.match(line):
            if chunk:
                yield _Sql(start, b"".join(chunk))
                chunk = []
            yield _Copy(number, line.rstrip(b"\r\n;"), _copy_rows(numbered))
            continue
        if not lexer.state and _OWNER_LINE.match(line):
            continue
        meta = lexer.meta_command(line)
        if meta is not None:
            if _PG_DUMP_META.match(line):
                continue
            shown = meta[:60].decode(errors="replace")
            raise DumpError(
                f"{name} line {number}: {shown!r} is a psql meta-command; the kit runs none of a "
                "dump's commands (they would run in the database's container)",
                "restore a dump as pg_dump writes it (pg_dump -Fc, or plain without -C), or remove "
                "that line if you wrote it",
            )
        if not chunk:
            start = number
        chunk.append(line)
    if chunk:
        yield _Sql(start, b"".join(chunk))


def _copy_rows(numbered: Iterator[tuple[int, bytes]]) -> Iterator[bytes]:
    for _, line in numbered:
        if line.rstrip(b"\r\n") == b"\\.":
            return
        yield line


class _Rows:
    """A _Copy's rows as the file COPY FROM STDIN reads (psycopg2's copy_expert)."""

    def __init__(self, rows: Iterator[bytes]) -> None:
        self.rows = rows

    def read(self, size: int = -1) -> bytes:
        block = []
        total = 0
        for row in self.rows:
            block.append(row)
            total += len(row)
            if total >= (size if size > 0 else 1 << 20):
                break
        return b"".join(block)

    readline = read


def check_plain(path: Path) -> int:
    """Read a plain dump through (DumpError at a meta-command); the tables it has data for."""
    tables = 0
    with path.open("rb") as f:
        for part in plain_parts(f, path.name):
            if isinstance(part, _Copy):
                tables += 1
                for _ in part.rows:
                    pass
    return tables


def _line_of(part: _Sql, exc) -> int:
    """The file's line where the server found an error in PART (its position, else the part's
    first line)."""
    try:
        position = int(exc.diag.statement_position or 0)
    except (AttributeError, ValueError):
        position = 0
    text = part.text.decode(errors="replace")
    return part.line + text.count("\n", 0, max(position - 1, 0))


def _restore_plain(stack: Stack, path: Path) -> None:
    """A plain dump in one transaction on the app's own login: its SQL as the server parses it,
    its COPY data through COPY FROM STDIN. psql never reads it, so no line of it is a command."""
    import psycopg2

    from devkit.backup.session import connect
    from devkit.backup.target import stack_target

    conn = connect(stack_target(stack.values))
    part: _Sql | _Copy | None = None
    try:
        with path.open("rb") as f, conn.cursor() as cur:
            for part in plain_parts(f, path.name):
                if isinstance(part, _Copy):
                    cur.copy_expert(part.statement.decode(), _Rows(part.rows), 1 << 20)
                else:
                    try:
                        cur.execute(part.text)
                    except psycopg2.ProgrammingError as exc:
                        if "empty query" not in str(exc):  # comments only: nothing to run
                            raise
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        line = part.line if isinstance(part, _Copy) or part is None else _line_of(part, exc)
        message = (exc.pgerror or str(exc)).strip().splitlines()[0]
        raise DumpError(
            f"restore of {path.name} failed at line {line}, nothing was changed: {message[:300]}",
            f"a plain dump creates its objects: restore it with --clean (devkit db.restore "
            f"{path} --clean: the database is set aside as a snapshot and the dump loaded into an "
            "empty one, put back if that fails)"
            if "already exists" in message
            else "see the message; the dump may not be for this database",
        ) from None
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def restore(stack: Stack, path: Path) -> None:
    """Replace the database's objects and data with the dump's, in one transaction, owned by the
    app's role."""
    if kind_of(path) != "custom":
        _restore_plain(stack, path)
        return
    command = _exec(
        stack,
        "pg_restore",
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--no-owner",
        interactive=True,
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
            shutil.copyfileobj(f, process.stdin, 1 << 20)
        except BrokenPipeError:
            pass  # pg_restore stopped at an error: its message says which
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
