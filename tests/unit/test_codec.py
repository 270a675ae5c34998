"""The row codec (devkit.backup.codec) without a database: format 1's JSON row lines (this kit's
files before format 2, and the earlier backup script's) -> the rows COPY FROM takes.

What the server receives is the text psycopg's Copy.write_row writes for each value: an int or a
Decimal as str(), a bool as t/f, a str as it is, None as NULL. `received` puts both paths' rows
in that form (a bool as the word PostgreSQL's boolean input also reads). The same properties
are checked against the server itself in tests/integration/test_codec_pg.py.
"""

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devkit.backup.codec import RowParser, array_literal, row_values

pytestmark = pytest.mark.unit

# No time limit per example (Hypothesis's default is 200 ms): the properties are about values,
# not speed. The first of these tests failed once in the quick lane on 2026-12-06 and passed in
# every run after; a time limit is the one thing in it that a busy machine can trip.
untimed = settings(deadline=None)

NULL = object()


def received(value) -> object:
    """The text the server's input function gets for a value of a row."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def rows_received(rows) -> list[list]:
    return [[received(value) for value in row] for row in rows]


def block_of(table: list[list]) -> bytes:
    """Row lines as the server prints them (to_json escapes as json.dumps does, no blanks)."""
    lines = [json.dumps(row, ensure_ascii=False, separators=(",", ":")) for row in table]
    return ("".join(line + ",\n" for line in lines[:-1]) + lines[-1] + "\n").encode()


# Each column type here, and values of it as the dump prints them (integers and booleans as
# their text, the rest through to_json; every code point in text, quotes, backslashes,
# newlines and control characters, which json.dumps writes as \\u escapes, included).
KINDS = {
    "bigint": st.integers(min_value=-(2**63), max_value=2**63 - 1),
    "boolean": st.booleans(),
    "numeric(12,3)": st.decimals(allow_nan=False, allow_infinity=False, places=3),
    "text": st.text() | st.just("null"),
    "text[]": st.text(alphabet='{},"\\ab'),  # an array as its text
}
typed_table = st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5).flatmap(
    lambda types: st.tuples(
        st.just(types),
        st.lists(
            st.tuples(*(st.none() | KINDS[t] for t in types)).map(list), min_size=1, max_size=20
        ),
    )
)


@untimed
@given(typed_table)
def test_rows_of_their_columns_types_reach_copy_as_the_values_they_hold(table):
    types, rows = table
    # Decimals printed with their own digits, as PostgreSQL's numeric output: 1.500 stays 1.500.
    lines = [
        "["
        + ",".join(
            str(v) if isinstance(v, Decimal) else json.dumps(v, ensure_ascii=False) for v in row
        )
        + "]"
        for row in rows
    ]
    block = ("".join(line + ",\n" for line in lines[:-1]) + lines[-1] + "\n").encode()
    parser = RowParser(types, [t.endswith("[]") for t in types], scalars=True)
    assert rows_received(parser.rows(block)) == rows_received(rows)


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(),
    st.just("null"),
    st.decimals(allow_nan=False, allow_infinity=False, places=6).map(str),
)
rows = st.integers(min_value=1, max_value=5).flatmap(
    lambda width: st.lists(
        st.lists(scalars, min_size=width, max_size=width), min_size=1, max_size=20
    )
)


@untimed
@given(rows)
def test_values_not_of_their_columns_type_are_parsed_row_by_row_and_kept(table):
    """Text columns holding numbers and booleans (a file edited, or of another schema): msgspec
    refuses the block, and each row is parsed on its own, its values as their text."""
    width = len(table[0])
    parser = RowParser(["text"] * width, [False] * width, scalars=True)
    assert rows_received(parser.rows(block_of(table))) == rows_received(table)


@pytest.mark.parametrize(
    "block, sent",
    [
        (b"[-0]\n", [["-0"]]),
        (b"[1,-0],\n[-0,2]\n", [["1", "-0"], ["-0", "2"]]),
        (b'["-0,",1.5e+30]\n', [["-0,", "1.5E+30"]]),
        (b'["NaN",-0]\n', [["NaN", "-0"]]),
        (b'["-Infinity",1]\n', [["-Infinity", "1"]]),
        (b"[1.5e-7,0]\n", [["1.5E-7", "0"]]),
    ],
)
def test_a_floats_negative_zero_keeps_its_sign(block, sent):
    """PostgreSQL prints a float8's -0 as the JSON integer -0; msgspec would read it as 0."""
    width = len(sent[0])
    rows = RowParser(["double precision"] * width, [False] * width, scalars=True).rows(block)
    assert rows_received(rows) == sent


def test_u_escapes_are_decoded_by_the_parser():
    block = b'["\\u0001\\ud83d\\ude00 \\t","\\\\u0041"]\n'
    [row] = RowParser(["text", "text"], [False, False], scalars=True).rows(block)
    assert list(row) == ["\x01\U0001f600 \t", "\\u0041"]


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


@untimed
@given(st.lists(nested, max_size=4))
def test_seed_arrays_become_array_input_holding_the_same_elements(items):
    assert read_array(array_literal(items)) == texts_of(items)


@untimed
@given(
    st.lists(nested, min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=3), nested, max_size=3),
)
def test_seed_rows_with_nesting_parse_per_row(array, obj):
    line = json.dumps([1, array, obj]).encode() + b"\n"
    parser = RowParser(["bigint", "text[]", "jsonb"], [False, True, False], scalars=False)
    [[number, literal, text]] = parser.rows(line)
    assert number == "1"
    assert read_array(literal) == texts_of(array)
    assert json.loads(text, parse_float=Decimal) == json.loads(json.dumps(obj), parse_float=Decimal)


@pytest.mark.parametrize(
    "line, why",
    [(b'{"a": 1}\n', "not a JSON array"), (b"[1, 2]\n", "zip"), (b"[" * 100_000 + b"\n", "nested")],
)
def test_a_damaged_row_is_a_value_error(line, why):
    with pytest.raises(ValueError, match=why):
        RowParser(["text"], [False], scalars=False).rows(line)
    with pytest.raises(ValueError, match=why):
        row_values(line, [False])
