"""The row codec, both ways, pure: what the server's COPY prints for the backup file (dump), and
the row lines of earlier files as the rows COPY FROM takes (load).

Since format 2 (devkit-backup/2) a table's rows are COPY's own text format, one row a line, as
pg_dump stores them and pg_restore feeds them: written and restored as they are. Files of
format 1 (devkit-backup/1) hold a JSON array per row line, followed by ",\\n" (the table's
last by "\\n"), scalars only (arrays and other types as their text); files of the earlier
backup script may hold nested JSON (arrays, objects), which takes the slower per-row path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

from devkit.backup.catalog import Column, quote_ident

# --- Dump: the server prints each row as the file's row line ---------------------------------
# Session settings that make the text of every value exact and independent of the server's
# defaults (as pg_dump's session): UTF-8, dates in ISO, floats' shortest exact text, bytea in hex.
EXACT_OUTPUT = (
    "SET client_encoding = 'UTF8'; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
    "SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'"
)
# The line that ends a table's rows in the file: COPY's own end-of-data marker, which no row
# line can be (a backslash in a value prints as two).
END_OF_DATA = b"\\.\n"


def select_list(
    columns: list[Column], computed: Mapping[str, str] | None = None, json_rows: bool = False
) -> str:
    """The SELECT list whose COPY output (copy_out's options) is the table's rows. COMPUTED: SQL
    computing some columns instead of reading them (a pull's masks, devkit/pull/masks.py), of
    their type. JSON_ROWS: format 1's row lines (`db.backup --format json`)."""
    computed = computed or {}
    if json_rows:
        return _json_select_list(columns, computed)
    return ", ".join(
        f"({computed[column.name]})" if column.name in computed else quote_ident(column.name)
        for column in columns
    )


def copy_out(json_rows: bool) -> str:
    """COPY TO's options: its text format, or format 1's (below)."""
    return _JSON_COPY_OUT if json_rows else ""


# Format 1: COPY's CSV output, ',' between columns and null for NULL, where every column prints
# as JSON: integers and booleans as their text, everything else through to_json (whose output
# holds no control character), the first column opening the array and the last closing it with
# "],". The quote character is \x02, which never occurs in that output: CSV wraps the fields
# holding a comma in it, and json_lines deletes it.
_JSON_COPY_OUT = "(FORMAT csv, QUOTE E'\\x02', NULL 'null')"
_QUOTE = b"\x02"
_AS_TEXT = ("smallint", "integer", "bigint", "boolean")


def _json_text(column: Column, value: str = "") -> str:
    name = f"({value})" if value else quote_ident(column.name)
    if column.type in _AS_TEXT:
        return f"{name}::text"
    return f"to_json({name}{'::text' if column.as_text else ''})::text"


def _json_select_list(columns: list[Column], computed: Mapping[str, str]) -> str:
    values = [_json_text(column, computed.get(column.name, "")) for column in columns]
    if not values:
        return "'[],'"
    values[-1] = f"coalesce({values[-1]}, 'null') || '],'"
    if len(values) > 1:
        values[0] = f"coalesce({values[0]}, 'null')"
    values[0] = f"'[' || {values[0]}"
    return ", ".join(values)


def json_lines(lines: bytes) -> bytes:
    """Format 1: COPY's rows as the file's row lines: only the quote characters go."""
    return lines.translate(None, _QUOTE) if _QUOTE in lines else lines


# --- Load: row lines as the rows COPY FROM takes ---------------------------------------------
# A block of row lines is parsed at once, at C speed, by msgspec: each column as its type here
# (integers as int, booleans as bool, numeric and floating point as Decimal from the number's
# own digits, the rest as str: JSON's escapes, \\u included, decoded by the parser). The rows go
# to psycopg 3's Copy.write_row, which writes COPY's text format in C, as pg_restore feeds it.
# (Was: the row lines as CSV, made by bytes.replace passes over every escape: twice pg_restore's
# time on text with tabs, quotes and backslashes.)
# FREEZE: the tables were truncated in the restore's transaction, so rows can be written frozen,
# and the foreign-key checks and ANALYZE that read them next set no hint bits (TRUNCATE already
# is not MVCC-safe for transactions older than the restore, FREEZE adds nothing to that).
COPY_IN = "(FREEZE)"
_INTEGERS = ("smallint", "integer", "bigint")
_NUMBERS = ("numeric", "real", "double precision")  # format_type's: numeric(10,2) too
_FLOATS = ("real", "double precision")


def kind(type_: str) -> type:
    """The Python type a column's JSON values are read as (format_type's name of its type)."""
    if type_ in _INTEGERS:
        return int
    if type_ == "boolean":
        return bool
    if type_.split("(")[0] in _NUMBERS:
        return Decimal
    return str


class RowParser:
    """One table's blocks of row lines as rows of values for Copy.write_row.

    TYPES: the columns' types here, in the file's column order; ARRAYS: which are arrays;
    SCALARS: the file holds scalars only (this kit's files; the earlier script's may nest)."""

    def __init__(self, types: list[str], arrays: list[bool], scalars: bool) -> None:
        import msgspec

        self.arrays = arrays
        self.refused = (msgspec.ValidationError, msgspec.DecodeError)
        kinds = tuple(kind(t) | None for t in types)
        self.typed = msgspec.json.Decoder(list[tuple[kinds]]) if scalars and kinds else None
        self.one = msgspec.json.Decoder(tuple[kinds]) if self.typed else None
        # -0 of a float column: msgspec reads it as the integer 0, the sign lost.
        self.signed_zero = any(t in _FLOATS for t in types)

    def rows(self, block: bytes) -> list:
        """The rows of BLOCK (whole row lines). ValueError for a damaged row."""
        if self.typed is not None and not (
            self.signed_zero and (b"-0," in block or b"-0]" in block)
        ):
            end = -2 if block.endswith(b",\n") else -1
            try:
                if block.find(b"\n") == len(block) - 1:  # one line: its row, the line not copied
                    return [self.one.decode(memoryview(block)[:end])]
                return self.typed.decode(b"[" + block[:end] + b"]")
            except self.refused:
                pass  # a value not of its column's type, or damage: each row on its own says
        return [row_values(line, self.arrays) for line in block.splitlines()]


def _integer(text: str) -> int | Decimal:
    return Decimal(text) if text == "-0" else int(text)  # a float column's -0 keeps its sign


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(items: list) -> str:
    """JSON arrays (the earlier backup script's files) as PostgreSQL array input: {"a",NULL,{"b"}}."""
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
        elif isinstance(item, list):
            parts.append(array_literal(item))
        else:
            parts.append(_quoted(_text(item)))
    return "{" + ",".join(parts) + "}"


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=float)  # objects into json columns


def row_values(line: bytes, arrays: list[bool]) -> list[str | None]:
    """One row line parsed on its own: values not of their column's type, nested JSON (arrays,
    objects) of the earlier script's files. ValueError for a line that is not a JSON array of
    one value per column."""
    try:
        values = json.loads(line.rstrip(b",\n"), parse_float=Decimal, parse_int=_integer)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(values, list):
        raise ValueError("not a JSON array")
    return [
        None
        if value is None
        else array_literal(value)
        if isinstance(value, list) and is_array
        else _text(value)
        for value, is_array in zip(values, arrays, strict=True)
    ]
