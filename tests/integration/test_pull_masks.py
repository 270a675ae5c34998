"""A pull's masking and subset on a real PostgreSQL 16 (a throwaway server from the kit's own
image, apart from every stack): the kit's backup with the masks computed in the server's COPY
(devkit/pull/masks.py, subset.py), restored into a second database of the same schema. The
HMAC is checked against Python's hmac module (RFC 2104)."""

import gzip
import hashlib
import hmac
import shutil
import subprocess
import time

import psycopg2
import pytest

from devkit.backup.dump import create_backup
from devkit.backup.load import restore_backup
from devkit.backup.target import Target
from devkit.pull import masks, source
from devkit.pull.rules import RulesError, from_plain
from tests.conftest import sql

pytestmark = pytest.mark.docker

PASSWORD = "scratch-pass-1234"
KEY = b"a-test-key-of-32-bytes-exactly!!"
SCHEMA = """
CREATE TABLE store (store_id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE address (address_id int PRIMARY KEY, address text NOT NULL, city text,
  phone varchar(20));
CREATE TABLE customer (
  customer_id int PRIMARY KEY, store_id int NOT NULL REFERENCES store,
  first_name text NOT NULL, last_name text NOT NULL, email varchar(80) UNIQUE,
  address_id int REFERENCES address, birth date, created timestamptz,
  referred_by int REFERENCES customer (customer_id), token text);
CREATE TABLE rental (rental_id bigint PRIMARY KEY, customer_id int NOT NULL REFERENCES customer,
  amount numeric(8,2), note text);
CREATE TABLE setting (name text PRIMARY KEY, value text);
"""
ROWS = """
INSERT INTO store VALUES (1, 'Main'), (2, 'North');
INSERT INTO address SELECT g, g || ' Real Street', 'Realcity', '080-1234-' || lpad(g::text, 4, '0')
  FROM generate_series(1, 500) g;
INSERT INTO customer SELECT g, 1 + g % 2, 'Realfirst' || g, 'Reallast' || g,
  'real.person' || g || '@corp.example', g, date '1980-01-01' + g,
  timestamptz '2020-01-01 12:00+00' + g * interval '1 hour', CASE WHEN g > 1 THEN g - 1 END,
  'secret-token-' || g FROM generate_series(1, 500) g;
INSERT INTO rental SELECT g, 1 + g % 500, g % 100, 'note ' || g FROM generate_series(1, 3000) g;
INSERT INTO setting VALUES ('mode', 'live');
"""
RULES = {
    "tables": {
        "store": {"store_id": "keep", "name": "keep"},
        "address": {
            "address_id": "keep",
            "address": {"fake": "address_ja"},
            "city": {"fake": "city"},
            "phone": {"format": "090-xxxx-xxxx"},
        },
        "customer": {
            "customer_id": "hash",
            "store_id": "keep",
            "first_name": {"fake": "first_name_ja"},
            "last_name": {"fake": "last_name"},
            "email": {"fake": "email"},
            "address_id": "keep",
            "birth": {"shift": 30},
            "created": {"shift": 5},
            "token": None,
        },
        "rental": {"rental_id": "keep", "amount": "keep", "note": {"fixed": "(masked)"}},
        "setting": {"name": "keep", "value": "keep"},
    }
}
ORIGINALS = ("Realfirst", "Reallast", "real.person", "Real Street", "080-1234", "secret-token")


@pytest.fixture(scope="module")
def server(stack, free_port):
    """A PostgreSQL 16 of the kit's image (the suite's stack built it) on a free port."""
    image = stack.values()["DEVKIT_POSTGRES_IMAGE"]
    port = free_port()
    name = f"devkit-test-pull-{port}"
    subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:5432",
         "-e", f"POSTGRES_PASSWORD={PASSWORD}", "-e", "POSTGRES_USER=app", "-e", "POSTGRES_DB=source",
         image],
        check=True, capture_output=True,
    )  # fmt: skip
    url = f"postgresql://app:{PASSWORD}@127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                psycopg2.connect(f"{url}/source", connect_timeout=2).close()
                break
            except psycopg2.OperationalError:
                time.sleep(0.2)
        sql(f"{url}/source", "CREATE DATABASE copy")
        sql(f"{url}/source", SCHEMA + ROWS)
        sql(f"{url}/copy", SCHEMA)
        yield url
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)


def read(path) -> str:
    with gzip.open(path, "rt", encoding="utf-8") as file:
        return file.read()


def masked_backup(url: str, rules: dict, tmp_path, key: bytes = KEY):
    target = Target(f"{url}/source", "127.0.0.1", "source")
    out = tmp_path / f"out-{time.monotonic_ns()}"
    out.mkdir()
    return create_backup(target, out, select=source.selector(from_plain(rules), key))


def test_the_servers_hmac_is_rfc_2104s(server):
    for key in (KEY, b"k" * 100):  # a key longer than SHA-256's block is hashed first
        statement, parameters = masks.key_statement(key)
        conn = psycopg2.connect(f"{server}/source")
        with conn.cursor() as cur:
            cur.execute(statement, parameters)
            for value in ("abc", "田中 太郎", "42"):
                cur.execute(
                    f"{masks.PADS} SELECT encode({masks.hmac_sql('%s::text')}, 'hex') FROM devkit_k",
                    (value,),
                )
                assert (
                    cur.fetchone()[0] == hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
                )
        conn.close()


def test_rows_leave_masked_and_keys_stay_consistent(server, tmp_path):
    made = masked_backup(server, RULES, tmp_path)
    text = read(made.path)
    assert [o for o in ORIGINALS if o in text] == []
    assert made.tables == {
        "public.address": 500, "public.customer": 500, "public.rental": 3000,
        "public.setting": 1, "public.store": 2,
    }  # fmt: skip
    restore_backup(Target(f"{server}/copy", "127.0.0.1", "copy"), made.path, exact=True)
    copy = f"{server}/copy"
    # Every foreign key holds (the restore checked them); the children follow the masked key.
    assert sql(copy, "SELECT count(*) FROM rental r JOIN customer c USING (customer_id)") == [
        (3000,)
    ]
    assert sql(copy, "SELECT count(*) FROM customer WHERE referred_by IS NOT NULL") == [(499,)]
    assert sql(copy, "SELECT count(*) FROM customer WHERE customer_id BETWEEN 1 AND 500") != [
        (500,)
    ]
    assert sql(copy, "SELECT count(DISTINCT email), count(*) FROM customer") == [(500, 500)]
    assert sql(copy, "SELECT count(*) FROM customer WHERE token IS NOT NULL") == [(0,)]
    assert sql(copy, "SELECT DISTINCT note FROM rental") == [("(masked)",)]
    phones = sql(copy, "SELECT phone FROM address")
    assert all(p.startswith("090-") and len(p) == 13 for (p,) in phones)
    # Dates move at most the rule's days either way.
    shifted = sql(
        copy,
        "SELECT max(abs(birth - (date '1980-01-01' + a.address_id))) FROM customer c "
        "JOIN address a USING (address_id)",
    )
    assert shifted[0][0] <= 30
    # The same key gives the same values; another key others.
    again = read(masked_backup(server, RULES, tmp_path).path)
    other = read(masked_backup(server, RULES, tmp_path, b"another-key-0123456789").path)
    rows = lambda t: t[t.index('"public.customer"') : t.rindex('"sha256"')]  # noqa: E731
    assert rows(again) == rows(text) and rows(other) != rows(text)


def test_every_column_needs_a_rule_and_each_rule_must_fit(server, tmp_path):
    def refused(rules: dict) -> str:
        with pytest.raises(RulesError) as caught:
            masked_backup(server, rules, tmp_path)
        return caught.value.cause

    without = {"tables": {t: dict(c) for t, c in RULES["tables"].items()}}
    del without["tables"]["customer"]["email"], without["tables"]["setting"]
    said = refused(without)
    assert "3 columns without a masking rule" in said
    assert all(
        c in said for c in ("public.customer.email", "public.setting.name", "public.setting.value")
    )
    typo = {
        "tables": {**RULES["tables"], "store": {"store_id": "keep", "nme": "keep", "name": "keep"}}
    }
    assert "no column public.store.nme" in refused(typo)
    child = {
        "tables": {
            **RULES["tables"],
            "rental": {**RULES["tables"]["rental"], "customer_id": "keep"},
        }
    }
    said = refused(child)
    assert "public.rental.customer_id references public.customer.customer_id" in said
    # A masked key whose parent has no rule yet: the parent is named as a column without a
    # rule (it used to be called "kept").
    unruled = {"tables": {t: dict(c) for t, c in RULES["tables"].items()}}
    del unruled["tables"]["customer"]["customer_id"]
    unruled["tables"]["rental"]["customer_id"] = "hash"
    said = refused(unruled)
    assert "columns without a masking rule: public.customer.customer_id" in said, said
    not_null = {"tables": {**RULES["tables"], "store": {"store_id": "keep", "name": None}}}
    assert "public.store.name is NOT NULL" in refused(not_null)
    shift = {"tables": {**RULES["tables"], "store": {"store_id": "keep", "name": {"shift": 3}}}}
    assert "shift is for dates" in refused(shift)


def test_a_subset_holds_what_its_rows_reference_and_passes_every_key(server, tmp_path):
    rules = {**RULES, "subset": {"root": "rental", "where": "rental_id <= 30", "children": 5}}
    made = masked_backup(server, rules, tmp_path)
    assert made.tables["public.rental"] == 30
    # Each rental's customer, and each customer's referrer up the chain (a cycle on one table):
    # customer g refers to g - 1, so the 30 rentals' customers (2..31) pull in every one below.
    assert made.tables["public.customer"] == 31
    assert made.tables["public.store"] == 2 and made.tables["public.setting"] == 1
    sql(f"{server}/copy", "TRUNCATE rental, customer, address, store, setting")
    restore_backup(Target(f"{server}/copy", "127.0.0.1", "copy"), made.path, exact=True)
    assert sql(f"{server}/copy", "SELECT count(*) FROM rental") == [(30,)]
    percent = {**RULES, "subset": {"root": "customer", "percent": 10, "children": 50}}
    sampled = masked_backup(server, percent, tmp_path)
    assert 0 < sampled.tables["public.customer"] < 500
    assert sampled.tables["public.rental"] <= 50
    bad = {**RULES, "subset": {"root": "rental", "where": "no_such_column = 1"}}
    with pytest.raises(RulesError) as caught:
        masked_backup(server, bad, tmp_path)
    assert "the subset's where is not a condition on public.rental" in caught.value.cause


def test_the_server_streams_the_same_file_as_the_tables_are_read(server, tmp_path):
    """db.pull.source writes to its stdout as the tables are read (no file on the server): the
    stream is a whole backup file, its SHA-256 included, masked the same way."""
    import io

    from devkit.backup.reader import verify

    stream = io.BytesIO()
    target = Target(f"{server}/source", "127.0.0.1", "source")
    made = create_backup(
        target, tmp_path, select=source.selector(from_plain(RULES), KEY), stream=stream
    )
    assert made.path is None and list(tmp_path.iterdir()) == []  # the spools are gone too
    path = tmp_path / "streamed.backup.gz"
    path.write_bytes(stream.getvalue())
    assert verify(path).tables == made.tables
    streamed = read(path)
    filed = read(masked_backup(server, RULES, tmp_path).path)
    rows = lambda t: t[t.index('"public.customer"') : t.rindex('"sha256"')]  # noqa: E731
    assert rows(streamed) == rows(filed)


def test_a_pull_that_fails_leaves_no_trace_on_the_laptop(stack, tmp_path):
    """A host that does not answer: one line, exit non-zero, and nothing made on the laptop
    (not even the backup directory the pull made for its file, nor a snapshot)."""
    from devkit.paths import KIT_ROOT

    from phrases import line_with

    inventory = KIT_ROOT / "inventories" / f"pull-down-{tmp_path.name}"
    rules = stack.app_dir / "db-pull.yaml"
    inventory.mkdir()
    try:
        (inventory / "hosts.yml").write_text(
            "all:\n  children:\n    servers:\n      hosts:\n        gone-host:\n"
            "          ansible_host: 127.0.0.1\n          ansible_port: 1\n"
        )
        rules.write_text("tables:\n  customer:\n    id: keep\n")
        backups = tmp_path / "not-yet"
        snapshots = stack.invoke("db.snapshots").stdout
        done = stack.invoke(
            "db.pull", str(inventory), "--yes", extra_env={"INVOKE_DEVKIT_BACKUP_DIR": str(backups)}
        )
        out = done.stdout + done.stderr
        assert done.returncode != 0 and "Traceback" not in out, out
        line_with(out, "error:", "cannot reach gone-host over SSH")
        assert not backups.exists(), list(backups.iterdir())
        # The snapshot kept while the server started is dropped again: no undo point is added
        # (nor an older one pruned) by a pull that changed nothing.
        assert stack.invoke("db.snapshots").stdout == snapshots
    finally:
        shutil.rmtree(inventory)
        rules.unlink(missing_ok=True)
