"""The row codec, both ways, pure: COPY's output as the backup file's row lines (dump), and row
lines as the CSV that COPY FROM reads (load).

A row line is a JSON array with one value per column, followed by ",\\n" (the table's last by
"\\n"). This kit's files hold scalars only (arrays and other types print as their text); files
of the earlier backup script may hold nested JSON (arrays, objects), which takes the slower per-row path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal

from devkit.backup.catalog import Column, quote_ident

# --- Dump: the server prints each row as the file's row line ---------------------------------
# Session settings that make the JSON of every value exact and independent of the server's defaults.
EXACT_OUTPUT = (
    "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 1; SET bytea_output = 'hex'"
)
# COPY's CSV output, ',' between columns and null for NULL, where every column prints as JSON:
# integers and booleans as their text, everything else through to_json (whose output holds no
# control character), the first column opening the array and the last closing it with "],". The
# quote character is \x02, which never occurs in that output: CSV wraps the fields holding a
# comma in it, and json_lines deletes it.
COPY_OUT = "(FORMAT csv, QUOTE E'\\x02', NULL 'null')"
_QUOTE = b"\x02"
_AS_TEXT = ("smallint", "integer", "bigint", "boolean")


def _json_text(column: Column, value: str = "") -> str:
    name = f"({value})" if value else quote_ident(column.name)
    if column.type in _AS_TEXT:
        return f"{name}::text"
    return f"to_json({name}{'::text' if column.as_text else ''})::text"


def select_list(columns: list[Column], computed: Mapping[str, str] | None = None) -> str:
    """The SELECT list whose COPY CSV output is the table's row lines. COMPUTED: SQL computing
    some columns instead of reading them (a pull's masks, devkit/pull/masks.py), of their type."""
    computed = computed or {}
    values = [_json_text(column, computed.get(column.name, "")) for column in columns]
    if not values:
        return "'[],'"
    values[-1] = f"coalesce({values[-1]}, 'null') || '],'"
    if len(values) > 1:
        values[0] = f"coalesce({values[0]}, 'null')"
    values[0] = f"'[' || {values[0]}"
    return ", ".join(values)


def json_lines(lines: bytes) -> bytes:
    """COPY's rows as the file's row lines: only the quote characters go."""
    return lines.translate(None, _QUOTE) if _QUOTE in lines else lines


# --- Load: row lines as CSV -------------------------------------------------------------------
# COPY's CSV format reads this kit's row lines almost as they are: top-level commas separate the
# values, JSON strings are quoted fields whose \" and \\ escapes CSV reads with ESCAPE '\', and an
# unquoted null is NULL while a quoted "null" stays a string.
# FREEZE: the tables were truncated in the restore's transaction, so rows can be written frozen,
# and the foreign-key checks and ANALYZE that read them next set no hint bits (TRUNCATE already
# is not MVCC-safe for transactions older than the restore, FREEZE adds nothing to that).
COPY_IN = "(FORMAT csv, NULL 'null', ESCAPE '\\', FREEZE)"


def plain(block: bytes) -> bool:
    """True when the JSON strings in `block` use no escapes but \\" and \\\\ (CSV reads those)."""
    return b"\\" not in block or b"\\" not in block.replace(b"\\\\", b"").replace(b'\\"', b"")


# JSON's short escapes other than \" and \\, and the characters they stand for: in a quoted CSV
# field these characters are taken as they are (a newline too).
_SHORT_ESCAPES = (
    (b"\\n", b"\n"), (b"\\t", b"\t"), (b"\\r", b"\r"), (b"\\b", b"\b"), (b"\\f", b"\f"),
    (b"\\/", b"/"),
)  # fmt: skip


def unescaped(lines: bytes) -> bytes | None:
    """CSV lines made from row lines (csv_lines), with JSON's short escapes (\\n, \\t …) turned
    into their characters, in bulk (bytes.replace, C speed): PostgreSQL's text output escapes
    tabs and newlines this way, and rows holding them took a per-row path (json.loads) that made
    a restore five times slower than pg_restore. \\\\ and \\" stay (CSV's ESCAPE reads them).
    Every \\\\ is set aside first, left to right as JSON reads them, as a NUL byte (which JSON
    text never holds raw): each backslash left then starts an escape, since no escape but
    \\\\ has a backslash as its second character. None when a \\uXXXX escape is there (the
    per-row path decodes those) or the text holds a NUL."""
    if b"\\" not in lines:
        return lines
    if b"\0" in lines:
        return None
    text = lines.replace(b"\\\\", b"\0")
    if b"\\u" in text:
        return None
    for escape, character in _SHORT_ESCAPES:
        if escape in text:
            text = text.replace(escape, character)
    return text.replace(b"\0", b"\\\\")


def csv_lines(block: bytes) -> bytes:
    """Row lines of scalars, '[1,"a"],' and '[2,"b"]', as the CSV lines '1,"a"' and '2,"b"'."""
    body = block[1:-2] if block.endswith(b"]\n") else block[1:-3]
    return body.replace(b"],\n[", b"\n") + b"\n"


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


def csv_row(line: bytes, arrays: list[bool]) -> str:
    """One row line parsed, for values CSV cannot take as they are (escapes like \\n, nesting).
    ValueError for a line that is not a JSON array of one value per column."""
    try:
        values = json.loads(line.rstrip(b",\n"), parse_float=Decimal)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if not isinstance(values, list):
        raise ValueError("not a JSON array")
    fields = []
    for value, is_array in zip(values, arrays, strict=True):
        if value is None:
            fields.append("null")
        elif isinstance(value, list) and is_array:
            fields.append(_quoted(array_literal(value)))
        else:
            fields.append(_quoted(_text(value)))
    return ",".join(fields) + "\n"


def to_csv(block: bytes, arrays: list[bool], scalars: bool) -> bytes:
    """A block of row lines as COPY CSV lines. `arrays`: which columns are arrays here;
    `scalars`: the lines hold scalars only (this kit's files). ValueError for a damaged row."""
    if scalars:
        # After csv_lines: the row boundaries it finds hold no newline of a value yet.
        converted = unescaped(csv_lines(block))
        if converted is not None:
            return converted
    if block.count(b"\n") == 1:  # one row (a long one has a block of its own): no copies
        return csv_row(block, arrays).encode()
    return "".join(
        csv_lines(line).decode() if scalars and plain(line) else csv_row(line, arrays)
        for line in block.splitlines(keepends=True)
    ).encode()
