"""Plain SQL dumps made by hand in a `postgres:postgres` container restore as the app's role:
their ownership statements are left out, as pg_restore --no-owner does for custom ones. What
devkit.backup.pgdump.plain_parts hands the server: SQL text, and each COPY's rows (the COPY
statement and its `\\.` end travel as the protocol's COPY, not as text)."""

import pytest

from devkit.backup.pgdump import _Copy, plain_parts

pytestmark = pytest.mark.unit

# As `pg_dump -U postgres app_db` writes it (PostgreSQL 16), cut down.
DUMP = b"""--
-- PostgreSQL database dump
--
SET statement_timeout = 0;
CREATE TABLE public.sample_users (
    id integer NOT NULL,
    email character varying(255) NOT NULL
);
ALTER TABLE public.sample_users OWNER TO postgres;
CREATE SEQUENCE public.sample_users_id_seq
    AS integer;
ALTER SEQUENCE public.sample_users_id_seq OWNER TO postgres;
ALTER SEQUENCE public.sample_users_id_seq OWNED BY public.sample_users.id;
ALTER TABLE ONLY public.sample_users ALTER COLUMN id SET DEFAULT nextval('public.sample_users_id_seq'::regclass);
COPY public.sample_users (id, email) FROM stdin;
1\tALTER TABLE public.x OWNER TO postgres;
\\.
ALTER FUNCTION public.touch() OWNER TO postgres;
ALTER SCHEMA app OWNER TO postgres;
--
-- PostgreSQL database dump complete
--
"""


COPY_LINE = b"COPY public.sample_users (id, email) FROM stdin;"


def sent(dump: bytes) -> tuple[bytes, list[bytes]]:
    """What reaches the server, as text (SQL and COPY rows), and the COPY statements."""
    text, copies = [], []
    for part in plain_parts(dump.splitlines(keepends=True), "dump.sql"):
        if isinstance(part, _Copy):
            copies.append(part.statement)
            text.append(b"".join(part.rows))
        else:
            text.append(part.text)
    return b"".join(text), copies


def test_ownership_statements_are_left_out_and_everything_else_kept():
    kept, copies = sent(DUMP)
    removed = set(DUMP.splitlines()) - set(kept.splitlines())
    assert removed == {
        b"ALTER TABLE public.sample_users OWNER TO postgres;",
        b"ALTER SEQUENCE public.sample_users_id_seq OWNER TO postgres;",
        b"ALTER FUNCTION public.touch() OWNER TO postgres;",
        b"ALTER SCHEMA app OWNER TO postgres;",
        COPY_LINE,
        b"\\.",
    }
    assert copies == [COPY_LINE.removesuffix(b";")]
    # OWNED BY is not ownership; a row of data that reads like SQL is data.
    assert b"OWNED BY public.sample_users.id;" in kept
    assert b"1\tALTER TABLE public.x OWNER TO postgres;\n" in kept


def test_a_dump_with_windows_line_ends_loses_the_same_statements():
    crlf = DUMP.replace(b"\n", b"\r\n")
    kept, copies = sent(crlf)
    assert b"OWNER TO postgres;\r\n" not in kept.replace(
        b"1\tALTER TABLE public.x OWNER TO postgres;\r\n", b""
    )
    assert copies == [COPY_LINE.removesuffix(b";")]
    assert kept.count(b"\r\n") == crlf.count(b"\r\n") - 4 - 2  # and the COPY line, `\.`
