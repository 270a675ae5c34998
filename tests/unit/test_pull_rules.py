"""db-pull.yaml as the kit reads it (devkit/pull/rules.py) and a first one as db.pull.init
guesses it (devkit/pull/guess.py): each mistake named with its line, nothing else needed."""

import pytest

from devkit.backup.catalog import Column, ForeignKey, Table
from devkit.pull.guess import first_file
from devkit.pull.rules import Rule, RulesError, from_json, load

pytestmark = pytest.mark.unit

GOOD = """\
# the team's rules
tables:
  public.customer:
    email: {fake: email}
    note: null
    token: hash
    country: {fixed: JP}
    phone: {format: "090-xxxx-xxxx"}
    birth: {shift: 30}
    id: keep
  orders:
    id: keep
subset:
  root: customer
  percent: 10
"""


def refused(tmp_path, text: str) -> str:
    (tmp_path / "db-pull.yaml").write_text(text)
    with pytest.raises(RulesError) as caught:
        load(tmp_path)
    return caught.value.cause + " | " + caught.value.hint


def test_a_good_file_reads_and_travels_to_the_server_unchanged(tmp_path):
    (tmp_path / "db-pull.yaml").write_text(GOOD)
    rules = load(tmp_path)
    assert rules.tables["public.customer"]["email"] == Rule("fake", "email")
    assert rules.tables["public.customer"]["note"] == Rule("null")
    assert rules.tables["public.orders"] == {"id": Rule("keep")}
    assert rules.subset.root == "public.customer" and rules.subset.percent == 10
    assert rules.where("public.customer", "token") == "db-pull.yaml, line 6"
    sent = from_json(rules.as_json())
    assert sent.tables == rules.tables and sent.subset == rules.subset
    assert sent.where("public.customer", "token") == "db-pull.yaml, line 6"
    assert sent.digest() == rules.digest()
    # Comments and order do not change the rules' hash; a rule does.
    (tmp_path / "db-pull.yaml").write_text(
        "# moved\n" + GOOD.replace("    id: keep\n  orders", "  orders")
    )
    assert load(tmp_path).digest() != rules.digest()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("tables:\n  customer:\n    email: {fake: emial}\n", "line 3: unknown fake 'emial'"),
        ("tables:\n  customer:\n    email: scramble\n", "line 3: unknown transformer 'scramble'"),
        ("tables:\n  customer:\n    email: {blur: 3}\n", "line 3: unknown transformer 'blur'"),
        (
            "tables:\n  customer:\n    birth: {shift: soon}\n",
            "line 3: shift takes a number of days",
        ),
        ("tables:\n  customer:\n    phone: {format: 0901234}\n", "line 3: format takes a pattern"),
        ("tables:\n  customer:\n   email: keep\n  bad\n", "simple key at line 4, column 3"),
        ("tables:\n  customer: keep\n", "line 2: customer needs its columns"),
        ("tabels:\n  customer:\n    id: keep\n", "line 1: unknown entry 'tabels'"),
        (
            "tables:\n  c:\n    id: keep\nsubset: {root: c}\n",
            "line 4: subset takes one of where and percent",
        ),
        ("- a list\n", "expected a mapping with `tables:`"),
    ],
)
def test_each_mistake_is_named_with_its_line(tmp_path, text, said):
    assert said in refused(tmp_path, text)


def test_no_file_says_how_to_write_one(tmp_path):
    with pytest.raises(RulesError) as caught:
        load(tmp_path)
    assert "db.pull.init" in caught.value.hint


def test_init_gives_every_column_a_rule_and_flags_the_personal_ones(tmp_path):
    tables = {
        "public.customer": Table(1, "public", "customer", [
            Column("id", "integer", False), Column("email", "character varying(80)", False),
            Column("first_name", "text", False), Column("phone_number", "text", False),
            Column("birth_date", "date", False), Column("password_hash", "text", False),
            Column("plan", "text", False), Column("last_login_ip", "inet", False),
        ]),
        "public.orders": Table(2, "public", "orders", [
            Column("id", "bigint", False), Column("customer_id", "integer", False),
        ]),
    }  # fmt: skip
    keys = [
        ForeignKey("orders_customer", "public.orders", "public.customer", ["customer_id"], ["id"])
    ]
    text = first_file(tables, keys, not_null={(1, "password_hash")})
    (tmp_path / "db-pull.yaml").write_text(text)
    rules = load(tmp_path).tables
    assert rules["public.customer"] == {
        "id": Rule("keep"), "email": Rule("fake", "email"), "first_name": Rule("fake", "first_name"),
        "phone_number": Rule("fake", "phone"), "birth_date": Rule("shift", 30),
        "password_hash": Rule("hash"), "plan": Rule("keep"), "last_login_ip": Rule("fake", "ip"),
    }  # fmt: skip
    assert rules["public.orders"] == {"id": Rule("keep")}  # customer_id follows its key
    guessed = [line for line in text.splitlines() if line.endswith("# guessed")]
    assert len(guessed) == 6 and "plan: keep  # text: check" in text
