"""The row codec against PostgreSQL itself: rows the server prints through codec.select_list
come back into COPY FROM (as a restore loads them) as the same rows, compared by the server: a
float's -0, NaN and infinities, every code point of text, numerics with their scale, jsonb,
arrays, bytea and timestamps. Format 2's COPY text goes back as it is; format 1's JSON row lines
(`--format json`, and every file of the kit before format 2) through codec.RowParser and
psycopg 3's Copy.write_row."""

import io
import json

import psycopg
import psycopg2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devkit.backup.catalog import app_tables
from devkit.backup.codec import (
    COPY_IN,
    EXACT_OUTPUT,
    RowParser,
    copy_out,
    json_lines,
    select_list,
)

pytestmark = pytest.mark.docker

COLUMNS = {
    "i": ("bigint", st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    "ok": ("boolean", st.booleans()),
    "t": ("text", st.text().map(lambda s: s.replace("\x00", ""))),
    "n": ("numeric", st.decimals(allow_nan=False, allow_infinity=False)),
    "f": ("float8", st.floats()),
    "j": (
        "jsonb",
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), st.text(alphabet='a"\\\n,{}ü')),
            lambda c: (
                st.lists(c, max_size=3)
                | st.dictionaries(st.text(alphabet='kü\\"', max_size=3), c, max_size=3)
            ),
            max_leaves=8,
        ).map(json.dumps),
    ),
    "a": ("int[]", st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), max_size=4)),
    "ta": ("text[]", st.lists(st.one_of(st.none(), st.text(alphabet='a,"\\{} \nNUL')), max_size=4)),
    "b": ("bytea", st.binary(max_size=16)),
    "ts": ("timestamptz", st.datetimes(timezones=st.timezones())),
}
row = st.fixed_dictionaries({name: st.none() | strategy for name, (_, strategy) in COLUMNS.items()})


@pytest.fixture(scope="module")
def loader(stack):
    with psycopg.connect(stack.admin_url(), autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def conn(stack):
    conn = stack.admin_connect()
    definition = ", ".join(f"{name} {type_}" for name, (type_, _) in COLUMNS.items())
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS codec CASCADE; CREATE SCHEMA codec")
        cur.execute(
            f"CREATE TABLE codec.source ({definition}); CREATE TABLE codec.copy ({definition})"
        )
        cur.execute(EXACT_OUTPUT)
    yield conn
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA codec CASCADE")
    conn.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(row, min_size=1, max_size=8), st.booleans())
def test_rows_printed_by_the_server_load_back_as_the_same_rows(conn, loader, rows, json_rows):
    names = list(COLUMNS)
    with conn.cursor() as cur:
        cur.execute("TRUNCATE codec.source, codec.copy")
        for values in rows:
            cur.execute(
                f"INSERT INTO codec.source VALUES ({', '.join(['%s'] * len(names))})",
                [psycopg2.Binary(v) if isinstance(v, bytes) else v for v in map(values.get, names)],
            )
        [table] = [t for t in app_tables(cur) if t.qualified == "codec.source"]
        out = io.BytesIO()
        columns = select_list(table.columns, json_rows=json_rows)
        cur.copy_expert(
            f"COPY (SELECT {columns} FROM codec.source) TO STDOUT {copy_out(json_rows)}", out
        )
        assert COPY_IN == "(FREEZE)"  # FREEZE needs the table emptied in the same transaction
        with loader.cursor() as load, load.copy("COPY codec.copy FROM STDIN") as copy:
            if json_rows:
                lines = json_lines(out.getvalue())
                # Format 1's layout: one JSON array per line, the last closed without a comma.
                block = lines[:-2] + b"\n"
                for line in block.splitlines():
                    assert isinstance(json.loads(line.removesuffix(b",")), list)
                types = [column.type for column in table.columns]
                parser = RowParser(types, [t.endswith("[]") for t in types], scalars=True)
                for values in parser.rows(block):
                    copy.write_row(values)
            else:
                block = out.getvalue()
                # Format 2: one line per row, never the end-of-data line.
                assert block.count(b"\n") == len(rows) and b"\n\\.\n" not in b"\n" + block
                copy.write(block)
        cur.execute(
            "SELECT (SELECT count(*) FROM (SELECT s::text FROM codec.source s EXCEPT ALL SELECT c::text FROM codec.copy c) x),"
            " (SELECT count(*) FROM (SELECT c::text FROM codec.copy c EXCEPT ALL SELECT s::text FROM codec.source s) y)"
        )
        assert cur.fetchone() == (0, 0)
