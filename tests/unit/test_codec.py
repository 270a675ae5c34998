"""The row codec (devkit.backup.codec) without a database: row lines -> COPY CSV.

The reference reader below is PostgreSQL's CSV input as its documentation states it (COPY,
"CSV Format": a quoted field may hold the delimiter and newlines; inside quotes ESCAPE before
the quote or the escape character makes it literal; an unquoted NULL string is NULL, a quoted
one is the string). tests/integration/test_codec_pg.py checks the same properties against the
server itself.
"""

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devkit.backup.codec import (
    array_literal,
    csv_lines,
    csv_row,
    json_lines,
    plain,
    to_csv,
    unescaped,
)

pytestmark = pytest.mark.unit

NULL = object()


def read_csv(data: bytes) -> list[list]:
    """COPY FROM's CSV input with NULL 'null', ESCAPE '\\', QUOTE '"': rows of str / NULL."""
    text = data.decode()
    rows, row, i = [], [], 0
    while i < len(text):
        if text[i] == '"':
            i, value = i + 1, []
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] in '"\\':
                    i += 1
                value.append(text[i])
                i += 1
            row.append("".join(value))
            i += 1
        else:
            end = min(j for j in (text.find(",", i), text.find("\n", i), len(text)) if j >= 0)
            raw = text[i:end]
            row.append(NULL if raw == "null" else raw)
            i = end
        if i < len(text) and text[i] == "\n":
            rows.append(row)
            row = []
        i += 1
    return rows


def as_input(value) -> object:
    """What PostgreSQL's input function gets for a JSON scalar of a row line."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(),  # every code point: quotes, backslashes, commas, newlines, control characters
    st.just("null"),
    st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str),
)
rows = st.integers(min_value=1, max_value=5).flatmap(
    lambda width: st.lists(
        st.lists(scalars, min_size=width, max_size=width), min_size=1, max_size=20
    )
)


def block_of(table: list[list]) -> bytes:
    """Row lines as the server prints them (to_json escapes as json.dumps does, no blanks)."""
    lines = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in table]
    return ("".join(line + ",\n" for line in lines[:-1]) + lines[-1] + "\n").encode()


@given(rows)
def test_scalar_rows_reach_copy_as_the_values_they_hold(table):
    arrays = [False] * len(table[0])
    expected = [[as_input(value) for value in row] for row in table]
    assert read_csv(to_csv(block_of(table), arrays, scalars=True)) == expected


@given(rows)
def test_the_fast_path_and_the_parsing_path_agree(table):
    block = block_of(table)
    arrays = [False] * len(table[0])
    parsed = "".join(csv_row(line, arrays) for line in block.splitlines(keepends=True))
    assert read_csv(to_csv(block, arrays, scalars=True)) == read_csv(parsed.encode())


@given(st.lists(st.text(alphabet='a,"\\\n\t', max_size=6), min_size=1, max_size=6))
def test_the_fast_path_is_taken_only_when_csv_reads_every_escape(texts):
    block = block_of([texts])
    assert plain(block) is not any(c in t for t in texts for c in "\n\t")


@given(st.lists(st.text(alphabet='a,"\\\n\t\r\b\f/日', max_size=6), min_size=1, max_size=6))
def test_short_escapes_are_turned_into_their_characters_in_bulk(texts):
    """Text as PostgreSQL prints it (tabs and newlines escaped) takes the bulk path, not a
    json.loads per row: it was five times slower than pg_restore on such rows."""
    converted = unescaped(csv_lines(block_of([texts])))
    assert converted is not None and read_csv(converted) == [texts]


def test_a_u_escape_is_left_to_the_per_row_path():
    assert unescaped(csv_lines(block_of([["\x01"]]))) is None
    assert unescaped(csv_lines(block_of([["\\u0041"]]))) is not None  # a backslash, then u


nested = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(alphabet='ab,"\\{} ', max_size=4)),
    lambda children: st.lists(children, max_size=3),
    max_leaves=10,
)


def read_array(literal: str):
    """PostgreSQL's array input (quoted elements, NULL, nesting) as nested lists."""
    pos = 0

    def parse():
        nonlocal pos
        assert literal[pos] == "{"
        pos += 1
        items = []
        while literal[pos] != "}":
            if literal[pos] == "{":
                items.append(parse())
            elif literal[pos] == '"':
                pos += 1
                value = []
                while literal[pos] != '"':
                    if literal[pos] == "\\":
                        pos += 1
                    value.append(literal[pos])
                    pos += 1
                pos += 1
                items.append("".join(value))
            else:
                assert literal.startswith("NULL", pos)
                pos += 4
                items.append(None)
            if literal[pos] == ",":
                pos += 1
        pos += 1
        return items

    return parse()


def texts_of(value):
    if isinstance(value, list):
        return [texts_of(item) for item in value]
    return None if value is None else str(value)


@given(st.lists(nested, max_size=4))
def test_seed_arrays_become_array_input_holding_the_same_elements(items):
    assert read_array(array_literal(items)) == texts_of(items)


@given(
    st.lists(nested, min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=3), nested, max_size=3),
)
def test_seed_rows_with_nesting_parse_per_row(array, obj):
    line = json.dumps([1, array, obj]).encode() + b"\n"
    [[number, literal, text]] = read_csv(to_csv(line, [False, True, False], scalars=False))
    assert number == "1"
    assert read_array(literal) == texts_of(array)
    assert json.loads(text, parse_float=Decimal) == json.loads(json.dumps(obj), parse_float=Decimal)


def test_copy_quote_bytes_are_deleted_and_nothing_else():
    assert json_lines(b'\x02[1,"a,b"],\x02\n') == b'[1,"a,b"],\n'
    assert json_lines(b"[1],\n") == b"[1],\n"


@pytest.mark.parametrize(
    "line, why",
    [(b'{"a": 1}\n', "not a JSON array"), (b"[1, 2]\n", "zip"), (b"[" * 100_000 + b"\n", "nested")],
)
def test_a_damaged_row_is_a_value_error(line, why):
    with pytest.raises(ValueError, match=why):
        to_csv(line, [False], scalars=False)
