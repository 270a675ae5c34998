"""Reading backup files: BackupReader streams this kit's files and normalises the earlier backup script's
files (read whole) into the same TableStreams; verify checks a whole file without a database."""

from __future__ import annotations

import hashlib
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from isal import igzip, isal_zlib

from devkit.backup import fileformat
from devkit.backup.arriving import open_backup
from devkit.backup.codec import END_OF_DATA
from devkit.backup.fileformat import (
    DATA_OPEN,
    END_OF_ROWS,
    MIB,
    READ_SIZE,
    SHA_PREFIX,
    CorruptBackup,
    TableStream,
    too_large,
)
from devkit.backup.models import (
    FORMAT,
    FORMAT_JSON_ROWS,
    BackupMetadata,
    TableHeader,
    header_of,
    metadata_of,
)


def _document_blocks(rows: list) -> Iterator[bytes]:
    """An earlier backup script's rows in this kit's row-line layout, a block of about READ_SIZE at a time
    (never the whole table again as text)."""
    lines: list[str] = []
    size, last = 0, len(rows) - 1
    for number, row in enumerate(rows):
        line = json.dumps(row, ensure_ascii=False)
        lines.append(line + (",\n" if number < last else "\n"))
        size += len(line)
        if size >= READ_SIZE or number == last:
            yield "".join(lines).encode()
            lines, size = [], 0


class BackupReader:
    """Reads a backup: metadata first, then tables one at a time, their rows streamed in blocks.

    This kit's files are read in one pass: the SHA-256 is checked when the last table has been
    read (`tables()` raises CorruptBackup on a mismatch, so a restore rolls back). Files written
    by the earlier backup script are read whole. `verify` checks a whole file without a database.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.limits = fileformat.LIMITS
        try:
            self._raw = open_backup(path)
        except FileNotFoundError:
            raise CorruptBackup(
                f"no such backup: {path}", "check the path; `devkit db.list` lists backups"
            ) from None
        except IsADirectoryError:
            raise CorruptBackup(
                f"{path} is a directory, not a backup file",
                "name a backup file in it; `devkit db.list` lists backups",
            ) from None
        except PermissionError:
            raise CorruptBackup(
                f"{path} cannot be read (permission denied)", f"check its owner: ls -l {path}"
            ) from None
        self._file = igzip.GzipFile(fileobj=self._raw, mode="rb")
        self._buf = b""
        self._pos = 0
        self._started = False
        self._pending = b""
        self.copy_text = False
        self._hash = hashlib.sha256()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        path = self.path
        # An earlier script's file may be one line: the first line may be as long as a whole document.
        document_max = self.limits.document_mb * MIB
        first = self._line("the metadata", eof_ok=True, limit=document_max)
        self.streamed = first.startswith(b'{"metadata": ') and first.endswith(b",\n")
        try:
            if self.streamed:
                meta = json.loads(first[len('{"metadata": ') : -2])
                written = meta.get("format") if isinstance(meta, dict) else None
                self.streamed = written in (FORMAT, FORMAT_JSON_ROWS)
                kits = isinstance(written, str) and written.startswith("devkit-backup/")
                if kits and not self.streamed:
                    raise CorruptBackup(
                        f"{path.name} is in format {written[:40]}, which a newer kit writes",
                        "update the kit (`git pull`, then `devkit setup`) and run this again",
                    )
                # Rows in COPY's text format; format 1 had JSON arrays.
                self.copy_text = written == FORMAT
            if not self.streamed:
                self._document = self._read_document(first, document_max)
                meta = self._document["metadata"]
            if not isinstance(meta, dict):
                raise ValueError("the metadata is not an object")
            self.metadata = metadata_of(meta)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            detail = (
                "nested too deeply"
                if isinstance(exc, RecursionError)
                else f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            )
            raise CorruptBackup(
                f"{path.name} is not a backup of the expected shape ({detail})",
                "use another backup; `devkit db.verify FILE` checks one",
            ) from None
        if self.streamed and self._line("the tables section") != b'"tables": {\n':
            raise CorruptBackup(f"{path.name} is damaged (no tables section)", "use another backup")

    @property
    def _line_max(self) -> int:
        return self.limits.line_mb * MIB

    def _document_too_large(self) -> CorruptBackup:
        return too_large(
            self.path, "the decompressed file", self.limits.document_mb, "backup_max_document_mb"
        )

    def _read_document(self, first: bytes, limit: int) -> dict:
        """A file of the earlier backup script, whole, its shape checked once here (normalised: every
        table a TableHeader and a list of rows) so that nothing later meets a surprise."""
        parts, size = [first, self._buf[self._pos :]], len(first) + len(self._buf) - self._pos
        while data := self._read():
            size += len(data)
            if size > limit:
                raise self._document_too_large()
            parts.append(data)
        self._buf, self._pos = b"", 0
        document = json.loads(b"".join(parts))
        del parts
        if not isinstance(document, dict):
            raise ValueError("the file is not a JSON object")
        tables = document.get("tables")
        if not isinstance(tables, dict):
            raise ValueError('"tables" is missing or not an object (table name -> table)')
        for name, table in tables.items():
            if not isinstance(table, dict) or not isinstance(table.get("data"), list):
                raise ValueError(f'table {name}: "data" is missing or not a list of rows')
            header = header_of(
                {k: table.get(k) for k in ("columns", "column_types", "row_count") if k in table}
            )
            width = len(header.columns)
            for number, row in enumerate(table["data"], 1):
                if not isinstance(row, list) or len(row) != width:
                    raise ValueError(f"table {name}: row {number} is not a list of {width} values")
            tables[name] = (header, table["data"])
        return document

    def _read(self) -> bytes:
        if self._pending:  # bytes read before, after a long line (_gather_line)
            data, self._pending = self._pending, b""
            return data
        try:
            data = self._file.read(READ_SIZE)
        except (OSError, EOFError, zlib.error, isal_zlib.error) as exc:
            if not self._started:
                raise CorruptBackup(
                    f"{self.path.name} is not a readable gzip file ({exc})", "use another backup"
                ) from None
            raise CorruptBackup(
                f"{self.path.name} is damaged ({exc})", "use another backup"
            ) from None
        self._started = True
        return data

    def _fill(self) -> bool:
        """Read more decompressed bytes; False at the end of the file."""
        data = self._read()
        self._buf = self._buf[self._pos :] + data
        self._pos = 0
        return bool(data)

    def _gather_line(self, what: str, eof_ok: bool, limit: int = 0) -> bool:
        """Read on until the buffer holds a whole line (at most `limit` bytes); False when the
        file ended first. Chunks go into one BytesIO, whose buffer getvalue() hands over."""
        gathered = io.BytesIO()
        last, self._buf = self._buf[self._pos :], b""
        size, read, ended = 0, False, False
        while b"\n" not in last:
            gathered.write(last)
            size += len(last)
            if size > (limit or self._line_max):
                if limit:  # the first line: an earlier script's file may be one whole line
                    raise self._document_too_large()
                raise too_large(
                    self.path, f"a line (in {what})", self.limits.line_mb, "backup_max_line_mb"
                )
            last, read = self._read(), True
            if not last:
                if not eof_ok:
                    raise CorruptBackup(
                        f"{self.path.name} is truncated (in {what})", "use another backup"
                    )
                ended = True
                break
        # The buffer ends with the line (_blocks hands it on whole); what follows is read next.
        end = last.find(b"\n") + 1 if read and not ended else len(last)
        gathered.write(memoryview(last)[:end])
        if end < len(last):
            self._pending = last[end:]
        self._buf, self._pos = gathered.getvalue(), 0
        return not ended

    def _line(
        self, what: str, *, hashed: bool = True, eof_ok: bool = False, limit: int = 0
    ) -> bytes:
        end = self._buf.find(b"\n", self._pos)
        if end < 0:
            self._gather_line(what, eof_ok, limit)
            end = self._buf.find(b"\n")
            end = len(self._buf) - 1 if end < 0 else end
        line = self._buf[self._pos : end + 1]
        self._pos = end + 1
        if hashed:
            self._hash.update(line)
        return line

    def table_names(self) -> list[str]:
        """The file's table names before its rows are read: from the metadata (or the
        document read whole), else by one pass over a copy of the file."""
        if not self.streamed:
            return [str(name) for name in self._document["tables"]]
        if self.metadata.tables is not None:
            return self.metadata.tables
        return list(verify(self.path).tables)

    def tables(self, order: list[str] | None = None) -> Iterator[TableStream]:
        """The tables, one at a time. `order`: the order to load them in (parents first), which
        a file of the earlier script, read whole, follows; this kit's files are written parents first and are read
        as written."""
        if not self.streamed:
            yield from self._document_tables(order)
            return
        while True:
            line = self._line("the table list")
            if line in (b"},\n", b"}\n"):
                break
            yield self._table(line)
        tail = self._line("the SHA-256", hashed=False, eof_ok=True)
        if (
            not tail.startswith(SHA_PREFIX.encode())
            or tail[len(SHA_PREFIX) : len(SHA_PREFIX) + 64].decode(errors="replace")
            != self._hash.hexdigest()
        ):
            raise CorruptBackup(
                f"{self.path.name} failed its SHA-256 check (changed or damaged after it was written)",
                "use another backup",
            )

    def _document_tables(self, order: list[str] | None) -> Iterator[TableStream]:
        tables = {str(name): table for name, table in self._document["tables"].items()}
        for name in order or list(tables):
            header, rows = tables[name]
            yield TableStream(name, header, _document_blocks(rows), False, scalars=False)

    def _table(self, line: bytes) -> TableStream:
        try:
            text = line.decode().removeprefix(",").lstrip()
            name, end = json.JSONDecoder().raw_decode(text)
            rest = text[end:]
            if not rest.startswith(": ") or not rest.endswith(DATA_OPEN):
                raise ValueError("bad table header")
            header = header_of(rest[2 : -len(DATA_OPEN)] + "}")
        except ValueError as exc:
            raise CorruptBackup(
                f"{self.path.name} is damaged near a table header ({exc})", "use another backup"
            ) from None
        return TableStream(name, header, self._blocks(name, header), self.copy_text)

    def _blocks(self, name: str, header: TableHeader) -> Iterator[bytes]:
        count = 0
        # Format 2: the end-of-data line ends the rows (no row line starts with a backslash and
        # a dot). Format 1: row lines start with "[" and JSON holds no raw newline: "\n]" does.
        last, end_of_rows = (END_OF_DATA, b"\n" + END_OF_DATA) if self.copy_text else (b"]", b"\n]")
        while True:
            if self._pos >= len(self._buf) and not self._fill():
                raise CorruptBackup(
                    f"{self.path.name} is truncated (in table {name})", "use another backup"
                )
            if self._buf.startswith(last, self._pos):
                if self.copy_text:
                    self._line(f"table {name}")
                break
            end = self._buf.find(end_of_rows, self._pos)
            cut = end + 1 if end >= 0 else self._buf.rfind(b"\n", self._pos) + 1
            if cut <= self._pos:  # a row longer than the buffer: read on to its end
                self._gather_line(f"table {name}", False)
                continue
            if self._pos == 0 and cut == len(self._buf):  # all of it: handed on, not copied
                block, self._buf, cut = self._buf, b"", 0
            else:
                block = self._buf[self._pos : cut]
            self._pos = cut
            self._hash.update(block)
            count += block.count(b"\n")
            # Handed on, not kept: a generator's locals live on while a long line is sent.
            handed, block = [block], None
            yield handed.pop()
        line = self._line(f"table {name}")
        try:
            declared = int(line[len(END_OF_ROWS) :].rstrip(b"},\n"))
        except ValueError:
            raise CorruptBackup(
                f"{self.path.name} is damaged after the rows of {name}", "use another backup"
            ) from None
        if not line.startswith(END_OF_ROWS) or declared != count:
            raise CorruptBackup(
                f"{self.path.name}: {name} has {count} rows, its header says {declared}",
                "use another backup",
            )
        header.row_count = declared

    def close(self) -> None:
        self._file.close()
        self._raw.close()

    def __enter__(self) -> BackupReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class VerifyReport:
    metadata: BackupMetadata
    tables: dict[str, int]
    checksum: bool  # False for files written by another tool (no SHA-256 inside)


def _rows_shaped(block: bytes, rows: int, width: int, copy_text: bool) -> bool:
    """Whether BLOCK's lines are rows of WIDTH values, counted over the block: COPY text has a
    tab between values and none inside one; each JSON array line starts with "[" and ends with
    "]" (and a comma)."""
    if copy_text:
        return block.count(b"\t") == rows * max(width - 1, 0)
    return (
        block.startswith(b"[")
        and block.count(b"\n[") == rows - 1
        and block.count(b"],\n") + block.endswith(b"]\n") == rows
    )


def verify(path: Path) -> VerifyReport:
    """Read the whole file: gzip CRC, JSON shape, row counts and (this kit's files) SHA-256."""
    counts: dict[str, int] = {}
    with BackupReader(path) as reader:
        for table in reader.tables():
            count = 0
            width = len(table.header.columns)
            for block in table.blocks:
                rows = block.count(b"\n")
                if not _rows_shaped(block, rows, width, table.copy_text):
                    raise CorruptBackup(
                        f"{path.name}: a row of {table.name} is damaged", "use another backup"
                    )
                count += rows
            declared = table.header.row_count
            if declared is not None and declared != count:
                raise CorruptBackup(
                    f"{path.name}: {table.name} has {count} rows, its header says {declared}",
                    "use another backup",
                )
            counts[table.name] = count
        return VerifyReport(reader.metadata, counts, reader.streamed)


def is_intact(path: Path, stack=None) -> bool:
    """Whether a backup can be restored: this kit's files are verified whole (SHA-256); pg_dump
    files by their ending, and by pg_restore --list in the stack's container when it runs. Any
    failure to check counts as not intact."""
    from devkit.backup.pgdump import dump_intact

    try:
        if path.name.endswith(".dump"):
            return dump_intact(path, stack)
        verify(path)
        return True
    except Exception:
        return False
