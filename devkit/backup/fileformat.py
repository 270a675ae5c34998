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

import gzip
import hashlib
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from devkit.backup.models import FORMAT, BackupMetadata, TableHeader
from devkit.errors import DevkitError

# Measured on 300,000 generated rows (43.8 MB of JSON; benchmarks/README.md): level 1 takes
# 0.39 s for 12.4 MB, gzip's default 9 takes 2.04 s for 11.4 MB. Speed wins over 9% of size.
COMPRESS_LEVEL = 1
_DATA_OPEN = ', "data": [\n'
_SHA_PREFIX = '"sha256": "'


class CorruptBackup(DevkitError):
    """The file is not a readable, intact backup."""


@dataclass
class TableStream:
    name: str
    header: TableHeader
    rows: Iterator[str]  # each row as JSON array text


class BackupWriter:
    """Writes a backup atomically: a hidden partial file, fsync, then rename to its name."""

    def __init__(self, path: Path, metadata: BackupMetadata) -> None:
        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        fd = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._raw = os.fdopen(fd, "wb")
        self._gzip = gzip.GzipFile(
            filename="", mode="wb", fileobj=self._raw, compresslevel=COMPRESS_LEVEL, mtime=0
        )
        self._hash = hashlib.sha256()
        self._first_table = True
        self.uncompressed = 0
        meta = metadata.model_dump(mode="json") | {"format": FORMAT}
        self._write('{"metadata": ' + json.dumps(meta, ensure_ascii=False) + ',\n"tables": {\n')

    def _write(self, text: str) -> None:
        data = text.encode()
        self._hash.update(data)
        self._gzip.write(data)
        self.uncompressed += len(data)

    def begin_table(self, name: str, columns: list[str], column_types: list[str]) -> None:
        head = {"columns": columns, "column_types": column_types}
        prefix = "" if self._first_table else ",\n"
        self._first_table = False
        self._write(
            prefix
            + json.dumps(name, ensure_ascii=False)
            + ": "
            + json.dumps(head)[:-1]
            + _DATA_OPEN
        )
        self._rows_in_table = 0

    def write_rows(self, rows: list[str]) -> None:
        """Append rows (JSON array text each) to the open table."""
        if rows:
            self._write(("" if self._rows_in_table == 0 else ",\n") + ",\n".join(rows))
            self._rows_in_table += len(rows)

    def end_table(self) -> int:
        count = self._rows_in_table
        self._write(("\n" if count else "") + f'], "row_count": {count}}}')
        return count

    def finish(self) -> Path:
        self._write("},\n" if self._first_table else "\n},\n")
        digest = self._hash.hexdigest()
        self._gzip.write(f'{_SHA_PREFIX}{digest}"}}\n'.encode())
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        os.replace(self.partial, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return self.path

    def abort(self) -> None:
        self._gzip.close()
        self._raw.close()
        self.partial.unlink(missing_ok=True)


class BackupReader:
    """Reads a backup: metadata first, then tables one at a time with their rows streamed.

    For this kit's files the SHA-256 is checked when the last table has been read (`close`
    raises CorruptBackup on a mismatch); `verify` checks a whole file without a database.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            # Held open for the reader's lifetime (close / context manager).
            self._file: IO[str] = gzip.open(path, "rt", encoding="utf-8", newline="\n")  # noqa: SIM115
            first = self._file.readline()
        except FileNotFoundError:
            raise CorruptBackup(
                f"no such backup: {path}", "check the path; `invoke db.list` lists backups"
            ) from None
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            raise CorruptBackup(
                f"{path.name} is not a readable gzip file ({exc})", "use another backup"
            ) from None
        self._hash = hashlib.sha256(first.encode())
        self.streamed = first.startswith('{"metadata": ') and first.endswith(",\n")
        try:
            if self.streamed:
                meta = json.loads(first[len('{"metadata": ') : -2])
                self.streamed = meta.get("format") == FORMAT
            if not self.streamed:
                self._document = json.loads(first + self._file.read())
                meta = self._document["metadata"]
            self.metadata = BackupMetadata.model_validate(meta)
        except (ValueError, KeyError, TypeError, EOFError, OSError, zlib.error) as exc:
            raise CorruptBackup(
                f"{path.name} is not a backup of the expected shape ({type(exc).__name__}: {str(exc)[:120]})",
                "use another backup; `invoke db.verify FILE` checks one",
            ) from None
        if self.streamed and self._readline() != '"tables": {\n':
            raise CorruptBackup(f"{path.name} is damaged (no tables section)", "use another backup")

    def _readline(self) -> str:
        try:
            line = self._file.readline()
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            raise CorruptBackup(
                f"{self.path.name} is damaged ({exc})", "use another backup"
            ) from None
        if not line.startswith(_SHA_PREFIX):
            self._hash.update(line.encode())
        return line

    def tables(self) -> Iterator[TableStream]:
        if not self.streamed:
            for name, table in self._document["tables"].items():
                rows = (json.dumps(row, ensure_ascii=False) for row in table["data"])
                header = TableHeader(columns=table["columns"], row_count=table.get("row_count"))
                yield TableStream(str(name), header, rows)
            return
        while True:
            line = self._readline()
            if line in ("},\n", "}\n"):
                break
            yield self._table(line)
        tail = self._readline()
        if (
            not tail.startswith(_SHA_PREFIX)
            or tail[len(_SHA_PREFIX) : -3] != self._hash.hexdigest()
        ):
            raise CorruptBackup(
                f"{self.path.name} failed its SHA-256 check (changed or damaged after it was written)",
                "use another backup",
            )

    def _table(self, line: str) -> TableStream:
        try:
            name, end = json.JSONDecoder().raw_decode(line.removeprefix(",").lstrip())
            rest = line.removeprefix(",").lstrip()[end:]
            if not rest.startswith(": ") or not rest.endswith(_DATA_OPEN):
                raise ValueError("bad table header")
            header = TableHeader.model_validate_json(rest[2 : -len(_DATA_OPEN)] + "}")
        except ValueError as exc:
            raise CorruptBackup(
                f"{self.path.name} is damaged near a table header ({exc})", "use another backup"
            ) from None
        return TableStream(name, header, self._rows(name, header))

    def _rows(self, name: str, header: TableHeader) -> Iterator[str]:
        count = 0
        while True:
            line = self._readline()
            if line.startswith('], "row_count": '):
                declared = int(line[len('], "row_count": ') :].rstrip("},\n"))
                if declared != count:
                    raise CorruptBackup(
                        f"{self.path.name}: {name} has {count} rows, its header says {declared}",
                        "use another backup",
                    )
                header.row_count = declared
                return
            if not line:
                raise CorruptBackup(
                    f"{self.path.name} is truncated (in table {name})", "use another backup"
                )
            count += 1
            yield line.rstrip("\n").removesuffix(",")

    def close(self) -> None:
        self._file.close()

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
            declared = table.header.row_count
            count = 0
            for row in table.rows:
                if not row.startswith("[") or not row.endswith("]"):
                    raise CorruptBackup(
                        f"{path.name}: a row of {table.name} is damaged", "use another backup"
                    )
                count += 1
            if declared is not None and declared != count:
                raise CorruptBackup(
                    f"{path.name}: {table.name} has {count} rows, its header says {declared}",
                    "use another backup",
                )
            counts[table.name] = count
        return VerifyReport(reader.metadata, counts, reader.streamed)
