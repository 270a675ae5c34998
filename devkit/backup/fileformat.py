"""The backup file: gzip of one JSON document, written and read as a stream.

Layout written by this kit (one row a line, so readers never hold a table in memory):

    {"metadata": {...},
    "tables": {
    "public.users": {"columns": [...], "column_types": [...], "data": [
    [1,"Alice"],
    [2,"Bob"]
    ], "row_count": 2},
    ...
    },
    "sha256": "<hex of every byte above this line>"}

Any other valid JSON of the seed's shape (`metadata`, `tables` -> `columns`, `data`) is read
whole, as the seed's own tool wrote it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import tempfile
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from isal import igzip, isal_zlib

from devkit.backup.models import FORMAT, BackupMetadata, TableHeader
from devkit.backup.store import new_backup_file, publish
from devkit.defaults import DEFAULTS
from devkit.errors import DevkitError

# gzip through ISA-L (isal's igzip: the same gzip format, written and read 2-4x faster than
# zlib). Measured on 58 MB of row lines (benchmarks/README.md): zlib level 1 0.27 s for 10.0 MB,
# zlib's default 6 1.42 s for 9.6 MB, ISA-L level 2 0.08 s for 9.9 MB.
COMPRESS_LEVEL = 2
_DATA_OPEN = ', "data": [\n'
_SHA_PREFIX = '"sha256": "'


class CorruptBackup(DevkitError):
    """The file is not a readable, intact backup."""


# Decompressed bytes read at once: rows are handed on in blocks of about this size.
_READ_SIZE = 1 << 20
_END_OF_ROWS = b'], "row_count": '
_MIB = 1 << 20


@dataclass(frozen=True)
class ReadLimits:
    """What a reader holds in memory at most, whatever the file (a damaged or hostile one too):
    one line of this kit's files (a row, the metadata), and a whole file of the seed's tool, which
    is read at once (its rows take about 8 times their size as Python objects).
    Settings: devkit.backup_max_line_mb, devkit.backup_max_document_mb."""

    line_mb: int = DEFAULTS["backup_max_line_mb"]
    document_mb: int = DEFAULTS["backup_max_document_mb"]


# The limits readers use; the data tasks set them from the settings (apply_limits).
LIMITS = ReadLimits()


def apply_limits(config) -> None:
    """Take the limits from Invoke's `devkit` config. Values other than the defaults are
    validated by devkit.settings (SettingsError naming the bad one); the defaults need no
    pydantic at start-up, as in devkit.envfile.load_stack."""
    global LIMITS
    keys = ("backup_max_line_mb", "backup_max_document_mb")
    if all(config.get(key, DEFAULTS[key]) == DEFAULTS[key] for key in keys):
        LIMITS = ReadLimits()
        return
    from devkit.settings import load_settings

    settings = load_settings(config)
    LIMITS = ReadLimits(settings.backup_max_line_mb, settings.backup_max_document_mb)


def _too_large(path: Path, what: str, limit_mb: int, setting: str) -> CorruptBackup:
    return CorruptBackup(
        f"{path.name}: {what} is larger than {limit_mb} MiB (devkit.{setting}); not read further",
        f"use another backup; if you trust this one, raise devkit.{setting} (invoke.yaml or "
        f"INVOKE_DEVKIT_{setting.upper()})",
    )


@dataclass
class TableStream:
    """One table of a backup. `blocks` are whole row lines as in the file: JSON array text, each
    line ending in ",\n" but the table's last, which ends in "\n"."""

    name: str
    header: TableHeader
    blocks: Iterator[bytes]

    def rows(self) -> Iterator[str]:
        """Row by row (JSON array text each): for small tables and tests; restore uses blocks."""
        for block in self.blocks:
            for line in block.decode().splitlines():
                yield line.removesuffix(",")


def rows_block(rows: list[str]) -> bytes:
    """Rows (JSON array text each) as one block for BackupWriter.write_block."""
    return "".join(row + ",\n" for row in rows).encode()


class _RowLines:
    """Rows in the file's layout: JSON array text each, separated by ",\n"."""

    _rows_in_table = 0
    # The longest row line written, when one is longer than what readers take by default
    # (LIMITS.line_mb): db.backup then says which setting restoring the file needs.
    longest_line = 0

    def _note_length(self, block: bytes) -> None:
        if len(block) > LIMITS.line_mb * _MIB:  # only then can a line of it be that long
            self.longest_line = max(self.longest_line, *map(len, block.split(b"\n")))

    def _write(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def write_block(self, block: bytes, rows: int) -> None:
        """Append `rows` rows: JSON array text each, each followed by ",\n". The last comma is
        never written: each block's is held back until more rows follow."""
        if rows:
            self._note_length(block)
            if self._rows_in_table:
                self._write(b",\n")
            self._write(memoryview(block)[:-2])
            self._rows_in_table += rows


class TableSpool(_RowLines):
    """A table's rows read while an earlier table is still being written: kept compressed
    (ISA-L level 1) in an anonymous temporary file beside the backup, then replayed into it."""

    def __init__(self, directory: Path) -> None:
        self._file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115  (closed by close())
        self._gzip = igzip.GzipFile(fileobj=self._file, mode="wb", compresslevel=1, mtime=0)

    def _write(self, data: bytes | memoryview) -> None:
        self._gzip.write(data)

    @property
    def rows(self) -> int:
        return self._rows_in_table

    def chunks(self) -> Iterator[bytes]:
        self._gzip.close()
        self._file.seek(0)
        with igzip.GzipFile(fileobj=self._file, mode="rb") as rows:
            while data := rows.read(_READ_SIZE):
                yield data

    def close(self) -> None:
        self._gzip.close()
        self._file.close()


class BackupWriter(_RowLines):
    """Writes a backup atomically into `directory`, named after the metadata's time: a hidden
    partial file of its own, fsync, then rename to its name."""

    def __init__(self, directory: Path, metadata: BackupMetadata) -> None:
        self._file = new_backup_file(directory, metadata.timestamp, ".backup.gz")
        self.path = self._file.path
        self.partial = self._file.partial
        self._raw = os.fdopen(self._file.fd, "wb")
        self._gzip = igzip.GzipFile(
            filename="", mode="wb", fileobj=self._raw, compresslevel=COMPRESS_LEVEL, mtime=0
        )
        self._hash = hashlib.sha256()
        self._first_table = True
        self._rows_in_table = 0
        self.uncompressed = 0
        # Hashing and compressing run in a thread of their own (both release the GIL), beside
        # the thread that receives rows; a few blocks wait in between at most.
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._worker = threading.Thread(target=self._drain, name="backup-writer", daemon=True)
        self._worker.start()
        meta = metadata.model_dump(mode="json") | {"format": FORMAT}
        self._write(
            ('{"metadata": ' + json.dumps(meta, ensure_ascii=False) + ',\n"tables": {\n').encode()
        )

    def _drain(self) -> None:
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._hash.update(data)
                    self._gzip.write(data)
                except BaseException as exc:  # raised again in the caller's thread
                    self._error = exc

    def _write(self, data: bytes | memoryview) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(data)
        self.uncompressed += len(data)

    def _stop(self) -> None:
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()

    def begin_table(self, name: str, columns: list[str], column_types: list[str]) -> None:
        head = {"columns": columns, "column_types": column_types}
        prefix = "" if self._first_table else ",\n"
        self._first_table = False
        text = prefix + json.dumps(name, ensure_ascii=False) + ": " + json.dumps(head)[:-1]
        self._write((text + _DATA_OPEN).encode())
        self._rows_in_table = 0

    def write_spool(self, spool: TableSpool) -> None:
        """The open table's rows, all of them, from a spool."""
        for chunk in spool.chunks():
            self._write(chunk)
        self._rows_in_table = spool.rows
        self.longest_line = max(self.longest_line, spool.longest_line)

    def write_rows(self, rows: list[str]) -> None:
        self.write_block(rows_block(rows), len(rows))

    def end_table(self) -> int:
        count = self._rows_in_table
        self._write(("\n" if count else "").encode() + _END_OF_ROWS + f"{count}}}".encode())
        return count

    def finish(self) -> Path:
        self._write(b"},\n" if self._first_table else b"\n},\n")
        self._stop()
        if self._error is not None:
            raise self._error
        digest = self._hash.hexdigest()
        self._gzip.write(f'{_SHA_PREFIX}{digest}"}}\n'.encode())
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        return publish(self._file)

    def abort(self) -> None:
        """Stop and remove the partial file (also after a failed write: disk full)."""
        self._stop()
        for close in (self._gzip.close, self._raw.close):
            with contextlib.suppress(OSError):
                close()
        self.partial.unlink(missing_ok=True)


def _document_blocks(rows: list) -> Iterator[bytes]:
    """A seed file's rows in this kit's row-line layout, a block of about _READ_SIZE at a time
    (never the whole table again as text)."""
    lines: list[str] = []
    size, last = 0, len(rows) - 1
    for number, row in enumerate(rows):
        line = json.dumps(row, ensure_ascii=False)
        lines.append(line + (",\n" if number < last else "\n"))
        size += len(line)
        if size >= _READ_SIZE or number == last:
            yield "".join(lines).encode()
            lines, size = [], 0


class BackupReader:
    """Reads a backup: metadata first, then tables one at a time, their rows streamed in blocks.

    This kit's files are read in one pass: the SHA-256 is checked when the last table has been
    read (`tables()` raises CorruptBackup on a mismatch, so a restore rolls back). Files written
    by the seed's tool are read whole. `verify` checks a whole file without a database.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.limits = LIMITS
        try:
            self._raw = path.open("rb")
        except FileNotFoundError:
            raise CorruptBackup(
                f"no such backup: {path}", "check the path; `invoke db.list` lists backups"
            ) from None
        except IsADirectoryError:
            raise CorruptBackup(
                f"{path} is a directory, not a backup file",
                "name a backup file in it; `invoke db.list` lists backups",
            ) from None
        except PermissionError:
            raise CorruptBackup(
                f"{path} cannot be read (permission denied)", f"check its owner: ls -l {path}"
            ) from None
        self._file = igzip.GzipFile(fileobj=self._raw, mode="rb")
        self._buf = b""
        self._pos = 0
        self._started = False
        self._hash = hashlib.sha256()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        path = self.path
        # A seed file may be one line: the first line may be as long as a whole document.
        document_max = self.limits.document_mb * _MIB
        first = self._line("the metadata", eof_ok=True, limit=document_max)
        self.streamed = first.startswith(b'{"metadata": ') and first.endswith(b",\n")
        try:
            if self.streamed:
                meta = json.loads(first[len('{"metadata": ') : -2])
                self.streamed = isinstance(meta, dict) and meta.get("format") == FORMAT
            if not self.streamed:
                self._document = self._read_document(first, document_max)
                meta = self._document["metadata"]
            if not isinstance(meta, dict):
                raise ValueError("the metadata is not an object")
            self.metadata = BackupMetadata.model_validate(meta)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            detail = (
                "nested too deeply"
                if isinstance(exc, RecursionError)
                else f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
            )
            raise CorruptBackup(
                f"{path.name} is not a backup of the expected shape ({detail})",
                "use another backup; `invoke db.verify FILE` checks one",
            ) from None
        if self.streamed and self._line("the tables section") != b'"tables": {\n':
            raise CorruptBackup(f"{path.name} is damaged (no tables section)", "use another backup")

    @property
    def _line_max(self) -> int:
        return self.limits.line_mb * _MIB

    def _document_too_large(self) -> CorruptBackup:
        return _too_large(
            self.path, "the decompressed file", self.limits.document_mb, "backup_max_document_mb"
        )

    def _read_document(self, first: bytes, limit: int) -> dict:
        """A file of the seed's tool, whole, its shape checked once here (normalised: every
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
            header = TableHeader.model_validate(
                {k: table.get(k) for k in ("columns", "column_types", "row_count") if k in table}
            )
            width = len(header.columns)
            for number, row in enumerate(table["data"], 1):
                if not isinstance(row, list) or len(row) != width:
                    raise ValueError(f"table {name}: row {number} is not a list of {width} values")
            tables[name] = (header, table["data"])
        return document

    def _read(self) -> bytes:
        try:
            data = self._file.read(_READ_SIZE)
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
        """Read on until the buffer holds a whole line (chunks gathered, joined once: linear
        time), at most `limit` bytes of it; False when the file ended first."""
        parts = [self._buf[self._pos :]]
        size = len(parts[0])
        ended = False
        while b"\n" not in parts[-1]:
            if size > (limit or self._line_max):
                if limit:  # the first line: a seed file may be a whole document on one line
                    raise self._document_too_large()
                raise _too_large(
                    self.path, f"a line (in {what})", self.limits.line_mb, "backup_max_line_mb"
                )
            data = self._read()
            if not data:
                if not eof_ok:
                    raise CorruptBackup(
                        f"{self.path.name} is truncated (in {what})", "use another backup"
                    )
                ended = True
                break
            parts.append(data)
            size += len(data)
        self._buf, self._pos = b"".join(parts), 0
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

    def tables(self) -> Iterator[TableStream]:
        if not self.streamed:
            yield from self._document_tables()
            return
        while True:
            line = self._line("the table list")
            if line in (b"},\n", b"}\n"):
                break
            yield self._table(line)
        tail = self._line("the SHA-256", hashed=False, eof_ok=True)
        if (
            not tail.startswith(_SHA_PREFIX.encode())
            or tail[len(_SHA_PREFIX) : len(_SHA_PREFIX) + 64].decode(errors="replace")
            != self._hash.hexdigest()
        ):
            raise CorruptBackup(
                f"{self.path.name} failed its SHA-256 check (changed or damaged after it was written)",
                "use another backup",
            )

    def document_tables(self) -> list[str]:
        """The table names of a file read whole (the seed's tool's files)."""
        return [str(name) for name in self._document["tables"]]

    def _document_tables(self) -> Iterator[TableStream]:
        for name, (header, rows) in self._document["tables"].items():
            yield TableStream(str(name), header, _document_blocks(rows))

    def _table(self, line: bytes) -> TableStream:
        try:
            text = line.decode().removeprefix(",").lstrip()
            name, end = json.JSONDecoder().raw_decode(text)
            rest = text[end:]
            if not rest.startswith(": ") or not rest.endswith(_DATA_OPEN):
                raise ValueError("bad table header")
            header = TableHeader.model_validate_json(rest[2 : -len(_DATA_OPEN)] + "}")
        except ValueError as exc:
            raise CorruptBackup(
                f"{self.path.name} is damaged near a table header ({exc})", "use another backup"
            ) from None
        return TableStream(name, header, self._blocks(name, header))

    def _blocks(self, name: str, header: TableHeader) -> Iterator[bytes]:
        count = 0
        while True:
            if self._pos >= len(self._buf) and not self._fill():
                raise CorruptBackup(
                    f"{self.path.name} is truncated (in table {name})", "use another backup"
                )
            if self._buf.startswith(b"]", self._pos):
                break
            # Row lines start with "[" and JSON holds no raw newline: "\n]" ends the rows.
            end = self._buf.find(b"\n]", self._pos)
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
            yield block
        line = self._line(f"table {name}")
        try:
            declared = int(line[len(_END_OF_ROWS) :].rstrip(b"},\n"))
        except ValueError:
            raise CorruptBackup(
                f"{self.path.name} is damaged after the rows of {name}", "use another backup"
            ) from None
        if not line.startswith(_END_OF_ROWS) or declared != count:
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


def verify(path: Path) -> VerifyReport:
    """Read the whole file: gzip CRC, JSON shape, row counts and (this kit's files) SHA-256."""
    counts: dict[str, int] = {}
    with BackupReader(path) as reader:
        for table in reader.tables():
            count = 0
            for block in table.blocks:
                rows = block.count(b"\n")
                # Every line is one JSON array: "[" starts each, "]" (and a comma) ends each.
                if not (
                    block.startswith(b"[")
                    and block.count(b"\n[") == rows - 1
                    and block.count(b"],\n") + block.endswith(b"]\n") == rows
                ):
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
