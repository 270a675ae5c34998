"""The backup file: its layout, the limits of what reading one may hold, and its writer
(devkit/backup/reader.py reads it).

Layout written by this kit (format devkit-backup/2; one row a line, so readers never hold a
table in memory):

    {"metadata": {...},
    "tables": {
    "public.users": {"columns": [...], "column_types": [...], "data": [
    1<TAB>Alice
    2<TAB>\\N
    \\.
    ], "row_count": 2},
    ...
    },
    "sha256": "<hex of every byte above this line>"}

A table's rows are COPY's text format, as the server prints them (and pg_dump stores them),
ended by COPY's end-of-data line. Format devkit-backup/1 (files of this kit before) had the
same lines around rows that were JSON arrays, each but the last followed by a comma, and no
end-of-data line. Any other valid JSON of the earlier backup script's shape (`metadata`,
`tables` -> `columns`, `data`) is read whole, as that script wrote it, and normalised on reading.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from isal import igzip

from devkit.backup.codec import END_OF_DATA
from devkit.backup.files import backup_path, new_backup_file, publish
from devkit.backup.models import FORMAT, FORMAT_JSON_ROWS, BackupMetadata, TableHeader
from devkit.errors import DevkitError
from devkit.settings.table import DEFAULTS

# gzip through ISA-L (isal's igzip: the same gzip format, written and read 2-4x faster than
# zlib). Measured on 58 MB of row lines (benchmarks/README.md): zlib level 1 0.27 s for 10.0 MB,
# zlib's default 6 1.42 s for 9.6 MB, ISA-L level 2 0.08 s for 9.9 MB.
COMPRESS_LEVEL = 2
DATA_OPEN = ', "data": [\n'
SHA_PREFIX = '"sha256": "'


class CorruptBackup(DevkitError):
    """The file is not a readable, intact backup."""


# Decompressed bytes read at once: rows are handed on in blocks of about this size.
READ_SIZE = 1 << 20
END_OF_ROWS = b'], "row_count": '
MIB = 1 << 20


@dataclass(frozen=True)
class ReadLimits:
    """What a reader holds in memory at most, whatever the file (a damaged or hostile one too):
    one line of this kit's files (a row, the metadata), and a whole file of the earlier backup script, which
    is read at once (its rows take about 8 times their size as Python objects).
    Settings: devkit.backup_max_line_mb, devkit.backup_max_document_mb."""

    line_mb: int = DEFAULTS["backup_max_line_mb"]
    document_mb: int = DEFAULTS["backup_max_document_mb"]


# The limits readers use; the data tasks set them from the settings (apply_limits).
LIMITS = ReadLimits()


def apply_limits(config) -> None:
    """Take the limits from Invoke's `devkit` config (devkit.settings.setting: a value
    other than the default is validated, SettingsError naming a bad one)."""
    global LIMITS
    from devkit.settings import setting

    LIMITS = ReadLimits(
        setting(config, "backup_max_line_mb"), setting(config, "backup_max_document_mb")
    )


def too_large(path: Path, what: str, limit_mb: int, setting: str) -> CorruptBackup:
    return CorruptBackup(
        f"{path.name}: {what} is larger than {limit_mb} MiB (devkit.{setting}); not read further",
        f"use another backup; if you trust this one, raise devkit.{setting} (invoke.yaml or "
        f"INVOKE_DEVKIT_{setting.upper()})",
    )


@dataclass
class TableStream:
    """One table of a backup. `blocks` are whole row lines as in the file: COPY text (format 2),
    or JSON array text each line ending in ",\\n" but the table's last, which ends in "\\n"."""

    name: str
    header: TableHeader
    blocks: Iterator[bytes]
    # The rows are COPY's text format (format 2); else JSON arrays (format 1, the earlier script).
    copy_text: bool = True
    # JSON rows: the values are scalars (this kit's files); an earlier backup script's may nest.
    scalars: bool = True

    def rows(self) -> Iterator[str]:
        """Row by row (each line's text): for small tables and tests; restore uses blocks."""
        for block in self.blocks:
            for line in block.decode().split("\n")[:-1]:
                yield line if self.copy_text else line.removesuffix(",")


def rows_block(rows: list[str], json_rows: bool = False) -> bytes:
    """Rows (COPY text or JSON array text each, without the line end) as one block for
    BackupWriter.write_block."""
    end = ",\n" if json_rows else "\n"
    return "".join(row + end for row in rows).encode()


class _RowLines:
    """Rows in the file's layout: COPY text, one row a line (format 1: JSON array text each,
    separated by ",\\n")."""

    _rows_in_table = 0
    json_rows = False
    # The longest row line written, when one is longer than what readers take by default
    # (LIMITS.line_mb): db.backup then says which setting restoring the file needs.
    longest_line = 0

    def _note_length(self, block: bytes) -> None:
        if len(block) > LIMITS.line_mb * MIB:  # only then can a line of it be that long
            self.longest_line = max(self.longest_line, *map(len, block.split(b"\n")))

    def _write(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    def write_block(self, block: bytes, rows: int) -> None:
        """Append `rows` rows: whole lines. JSON rows each end in ",\\n", and the last comma is
        never written: each block's is held back until more rows follow."""
        if rows:
            self._note_length(block)
            if not self.json_rows:
                self._write(block)
            else:
                if self._rows_in_table:
                    self._write(b",\n")
                self._write(memoryview(block)[:-2])
            self._rows_in_table += rows


class TableSpool(_RowLines):
    """A table's rows read while an earlier table is still being written: kept compressed
    (ISA-L level 1) in an anonymous temporary file beside the backup, then replayed into it."""

    def __init__(self, directory: Path, json_rows: bool = False) -> None:
        self.json_rows = json_rows
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
            while data := rows.read(READ_SIZE):
                yield data

    def close(self) -> None:
        try:
            self._gzip.close()
        finally:
            self._file.close()


class BackupWriter(_RowLines):
    """Writes a backup atomically into `directory`, named after the metadata's time: a hidden
    partial file of its own, fsync, then rename to its name."""

    def __init__(
        self,
        directory: Path,
        metadata: BackupMetadata,
        stream: BinaryIO | None = None,
        json_rows: bool = False,
    ) -> None:
        # STREAM: written there instead (db.pull.source's stdout); DIRECTORY then only holds
        # the tables' spools. JSON_ROWS: format 1 (`db.backup --format json`).
        self.directory = directory
        self.json_rows = json_rows
        self._file = (
            None if stream else new_backup_file(directory, metadata.timestamp, ".backup.gz")
        )
        self.path = self._file.path if self._file else None
        self.partial = self._file.partial if self._file else None
        self._raw = stream or os.fdopen(self._file.fd, "wb")
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
        meta = metadata.as_json() | {"format": FORMAT_JSON_ROWS if json_rows else FORMAT}
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
        self._write((text + DATA_OPEN).encode())
        self._rows_in_table = 0

    def write_spool(self, spool: TableSpool) -> None:
        """Rows of the open table (all of them, or a part's after those before it), from a spool."""
        for chunk in spool.chunks():
            self._write(chunk)
        self._rows_in_table += spool.rows
        self.longest_line = max(self.longest_line, spool.longest_line)

    def write_rows(self, rows: list[str]) -> None:
        self.write_block(rows_block(rows, self.json_rows), len(rows))

    def end_table(self) -> int:
        count = self._rows_in_table
        end = (b"\n" if count else b"") if self.json_rows else END_OF_DATA
        self._write(end + END_OF_ROWS + f"{count}}}".encode())
        return count

    def finish(self) -> Path | None:
        self._write(b"},\n" if self._first_table else b"\n},\n")
        self._stop()
        if self._error is not None:
            raise self._error
        digest = self._hash.hexdigest()
        self._gzip.write(f'{SHA_PREFIX}{digest}"}}\n'.encode())
        self._gzip.close()
        self._raw.flush()
        if self._file is None:  # a stream: its reader has every byte
            return None
        os.fsync(self._raw.fileno())
        self._raw.close()
        return publish(self._file)

    def abort(self) -> None:
        """Stop and remove the partial file (also after a failed write: disk full)."""
        self._stop()
        if self._file is None:  # a stream: left open, its reader sees it end without the hash
            return
        for close in (self._gzip.close, self._raw.close):
            with contextlib.suppress(OSError):
                close()
        self.partial.unlink(missing_ok=True)


def backup_to_read(config: Mapping[str, Any], file: str) -> Path:
    """backup_path, with the configured limits of reading backups in force (apply_limits)."""
    apply_limits(config)
    return backup_path(config, file)
