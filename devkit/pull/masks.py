"""Each rule as the SQL expression the server's COPY computes (rows leave the server masked; no
extension needed), checked against the server's own catalog: every column has a rule (strict),
a masked key is masked the same way in every foreign key that references it, a rule fits its
column.

The keyed hash is HMAC-SHA256 (RFC 2104) written with PostgreSQL's own sha256(): the key's inner
and outer pads are set in the session (`set_config`, never in the text of a COPY, which the
server's log may show on an error), and every masked value derives from
HMAC(key, value::text). The same value masks the same way in every table, on every pull with
the same key: a parent's key and its children's foreign keys stay equal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from devkit.backup.catalog import ForeignKey, Table, quote_ident
from devkit.pull import fakes
from devkit.pull.rules import Rule, Rules, RulesError

INNER, OUTER = "devkit.pull_ipad", "devkit.pull_opad"
KEEP = Rule("keep")
_INTEGERS = {"smallint": 15, "integer": 31, "bigint": 63}
_DATES = ("date", "timestamp without time zone", "timestamp with time zone")


def key_statement(key: bytes) -> tuple[str, tuple[str, str]]:
    """The statement (and its parameters) that gives a session the key's HMAC pads."""
    block = hashlib.sha256(key).digest() if len(key) > 64 else key
    block = block.ljust(64, b"\0")
    inner = bytes(b ^ 0x36 for b in block).hex()
    outer = bytes(b ^ 0x5C for b in block).hex()
    return (
        f"SELECT set_config('{INNER}', %s, false), set_config('{OUTER}', %s, false)",
        (inner, outer),
    )


# The key's pads, decoded once per COPY (a materialized CTE: not once per row), and each masked
# column's HMAC computed once per row in a LATERAL subquery (OFFSET 0 keeps the planner from
# folding it into every reference: a fake reads several bytes of it).
PADS = (
    "WITH devkit_k AS MATERIALIZED (SELECT "
    f"decode(current_setting('{INNER}'), 'hex') AS devkit_inner, "
    f"decode(current_setting('{OUTER}'), 'hex') AS devkit_outer)"
)


def hmac_sql(value: str) -> str:
    """HMAC-SHA256(key, VALUE::text) as bytea, the pads from devkit_k (PADS)."""
    return (
        "sha256(devkit_k.devkit_outer || sha256(devkit_k.devkit_inner || "
        f"convert_to(({value})::text, 'UTF8')))"
    )


def hashes_join(columns: list[str]) -> str:
    """The FROM items giving each of COLUMNS (quoted, of the table aliased devkit_t) its HMAC as
    devkit_m.devkit_hN, N its position."""
    made = ", ".join(f"{hmac_sql(f'devkit_t.{c}')} AS devkit_h{n}" for n, c in enumerate(columns))
    return f"CROSS JOIN devkit_k CROSS JOIN LATERAL (SELECT {made} OFFSET 0) AS devkit_m"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pick(h: str, words: tuple[str, ...], n: int) -> str:
    """One of WORDS, chosen by the hash's bytes 2n and 2n+1."""
    array = "ARRAY[" + ", ".join(_literal(w) for w in words) + "]"
    return (
        f"({array})[1 + (get_byte({h}, {2 * n}) * 256 + get_byte({h}, {2 * n + 1})) % {len(words)}]"
    )


def _digits(h: str, first: int, count: int) -> str:
    """COUNT digits from the hash's bytes FIRST…"""
    return " || ".join(f"chr(48 + get_byte({h}, {first + i}) % 10)" for i in range(count))


def _hex(h: str, count: int) -> str:
    return f"left(encode({h}, 'hex'), {count})"


def _fake(kind: str, h: str) -> str:
    first, last = _pick(h, fakes.FIRST_NAMES, 0), _pick(h, fakes.LAST_NAMES, 1)
    if kind == "first_name":
        return first
    if kind == "last_name":
        return last
    if kind == "name":
        return f"{first} || ' ' || {last}"
    if kind == "first_name_ja":
        return _pick(h, fakes.FIRST_NAMES_JA, 0)
    if kind == "last_name_ja":
        return _pick(h, fakes.LAST_NAMES_JA, 1)
    if kind == "name_ja":
        return f"{_pick(h, fakes.LAST_NAMES_JA, 1)} || ' ' || {_pick(h, fakes.FIRST_NAMES_JA, 0)}"
    if kind == "email":  # 12 hex digits: unique among millions (checked on load all the same)
        return f"lower({first} || '.' || {last}) || '.' || {_hex(h, 12)} || '@example.com'"
    if kind == "phone":
        return f"'555-' || {_digits(h, 4, 3)} || '-' || {_digits(h, 7, 4)}"
    if kind == "phone_ja":
        return f"'090-' || {_digits(h, 4, 4)} || '-' || {_digits(h, 8, 4)}"
    if kind == "address":
        number = f"(1 + (get_byte({h}, 10) * 256 + get_byte({h}, 11)) % 9999)::text"
        street = f"{_pick(h, fakes.STREETS, 2)} || ' ' || {_pick(h, fakes.STREET_KINDS, 3)}"
        return f"{number} || ' ' || {street} || ', ' || {_pick(h, fakes.CITIES, 4)}"
    if kind == "address_ja":
        block = f"(1 + get_byte({h}, 12) % 9)::text || '丁目' || (1 + get_byte({h}, 13) % 30)::text"
        return (
            f"{_pick(h, fakes.PREFECTURES_JA, 2)} || {_pick(h, fakes.CITIES_JA, 3)} || "
            f"{_pick(h, fakes.TOWNS_JA, 4)} || {block} || '-' || (1 + get_byte({h}, 14) % 20)::text"
        )
    if kind == "city":
        return _pick(h, fakes.CITIES, 4)
    if kind == "company":
        return f"{_pick(h, fakes.COMPANIES, 2)} || ' ' || {_pick(h, fakes.COMPANY_KINDS, 3)}"
    if kind == "ip":  # 10.0.0.0/8: a private network, never a real client's address
        octets = " || '.' || ".join(f"get_byte({h}, {i})::text" for i in (20, 21, 22))
        return f"'10.' || {octets}"
    raise RulesError(f"unknown fake {kind!r}", "see db-pull.yaml's comment for the fakes")


def _format(pattern: str, h: str) -> str:
    parts, n = [], 0
    literal = ""
    for char in pattern:
        if char in "x?":
            if literal:
                parts.append(_literal(literal))
                literal = ""
            base, modulo = (48, 10) if char == "x" else (97, 26)
            parts.append(f"chr({base} + get_byte({h}, {n}) % {modulo})")
            n += 1
        else:
            literal += char
    if literal:
        parts.append(_literal(literal))
    return " || ".join(parts)


def expression(rule: Rule, column: str, type_: str, origin_type: str = "", h: str = "") -> str:
    """The SQL value of COLUMN (quoted) under RULE, of the column's TYPE. ORIGIN_TYPE: the type of
    the key column a foreign key's rule came from (a hash of an integer key is made as that
    column's integer, so parent and child values stay equal). H: the SQL of the column's HMAC
    (hashes_join), else computed here. NULL stays NULL."""
    if rule.kind == "keep":
        return column
    if rule.kind == "null":
        return f"NULL::{type_}"
    h = h or hmac_sql(column)
    if rule.kind == "fixed":
        value = "NULL" if rule.argument is None else _literal(str(rule.argument))
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE {value} END::{type_}"
    if rule.kind == "hash":
        basis = origin_type or type_
        if basis in _INTEGERS:
            bits = _INTEGERS[basis]
            made = f"('x' || {_hex(h, 16)})::bit(64)::bigint & {(1 << bits) - 1}"
        elif basis == "uuid":
            made = f"{_hex(h, 32)}::uuid"
        else:
            made = f"encode({h}, 'hex')"
        return f"({made})::{type_}"
    if rule.kind == "shift":
        days = int(rule.argument)  # type: ignore[arg-type]
        offset = f"((get_byte({h}, 0) * 256 + get_byte({h}, 1)) % {2 * days + 1} - {days})"
        if type_ == "date":
            return f"({column} + {offset})"
        return f"({column} + make_interval(days => {offset}))"
    if rule.kind == "fake":
        return f"({_fake(str(rule.argument), h)})::{type_}"
    if rule.kind == "format":
        return f"({_format(str(rule.argument), h)})::{type_}"
    raise RulesError(f"unknown transformer {rule.kind!r}", "see db-pull.yaml's comment")


@dataclass
class MaskPlan:
    """What the server's COPY of each table selects: the columns not kept, as SQL."""

    expressions: dict[str, dict[str, str]] = field(default_factory=dict)
    joins: dict[str, str] = field(default_factory=dict)  # table → FROM items (hashes_join)


def not_null(cur, oids: list[int]) -> set[tuple[int, str]]:
    cur.execute(
        "SELECT attrelid, attname FROM pg_attribute WHERE attrelid = ANY(%s) AND attnum > 0 "
        "AND attnotnull AND NOT attisdropped",
        (oids,),
    )
    return {(oid, name) for oid, name in cur.fetchall()}


def _listed(names: list[str], most: int = 12) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")


def plan(cur, tables: dict[str, Table], keys: list[ForeignKey], rules: Rules) -> MaskPlan:
    """The masks of every table, or RulesError naming every problem of one kind (with lines)."""
    unknown_tables = sorted(set(rules.tables) - set(tables))
    if unknown_tables:
        raise RulesError(
            f"{rules.where(unknown_tables[0])}: no table {_listed(unknown_tables)} in the database",
            "remove it from db-pull.yaml, or check its name (schema.table)",
        )
    unknown = [
        f"{t}.{c}"
        for t, cols in rules.tables.items()
        for c in cols
        if c not in {col.name for col in tables[t].columns}
    ]
    if unknown:
        raise RulesError(
            f"{rules.where(unknown[0])}: no column {_listed(unknown)} in the database",
            "remove it from db-pull.yaml, or check its name",
        )
    types = {(t, c.name): c.type for t, table in tables.items() for c in table.columns}
    chosen: dict[tuple[str, str], Rule] = {
        (t, c): r for t, cols in rules.tables.items() for c, r in cols.items()
    }
    origin: dict[tuple[str, str], tuple[str, str]] = {}
    changed = True
    while changed:  # a key's rule flows down every chain of foreign keys
        changed = False
        for key in keys:
            for child, parent in zip(key.child_columns, key.parent_columns, strict=True):
                up, down = (key.parent, parent), (key.child, child)
                rule, own = chosen.get(up), chosen.get(down)
                if own is None:  # follows its key, kept or masked alike
                    if rule is not None:
                        chosen[down] = rule
                        origin[down] = origin.get(up, up)
                        changed = True
                    continue
                if rule is None:  # it may still come down the parent's own keys, else
                    continue  # the parent is listed below among the columns without a rule
                if rule.kind == "keep":
                    if own.kind != "keep" and down not in origin:
                        raise RulesError(
                            f"{rules.where(*down)}: {key.child}.{child} is masked ({own.describe()}) "
                            f"but the key it references, {key.parent}.{parent}, is kept: "
                            f"foreign key {key.name} would point nowhere",
                            f"mask {key.parent}.{parent} the same way, or keep both",
                        )
                elif own != rule:
                    raise RulesError(
                        f"{rules.where(*down)}: {key.child}.{child} references {key.parent}.{parent}, "
                        f"masked with {rule.describe()}, but its own rule is {own.describe()}",
                        f"give {key.child}.{child} the same rule, or leave it out (it follows the key)",
                    )
    missing = [
        f"{t}.{c.name}"
        for t, table in tables.items()
        for c in table.columns
        if (t, c.name) not in chosen
    ]
    if missing:
        raise RulesError(
            f"{len(missing)} column{'s' if len(missing) > 1 else ''} without a masking rule: "
            f"{_listed(missing, 30)}",
            "give each a rule in db-pull.yaml (keep for what is not personal); "
            "devkit db.pull.init --print shows a guessed rule for each",
        )
    not_null_columns = not_null(cur, [t.oid for t in tables.values()])
    result = MaskPlan()
    hashed_columns: dict[str, list[str]] = {}
    for (t, c), rule in sorted(chosen.items()):
        type_ = types[(t, c)]
        if rule.kind == "null" and (tables[t].oid, c) in not_null_columns:
            raise RulesError(
                f"{rules.where(t, c)}: {t}.{c} is NOT NULL: it cannot be null",
                "use fixed, fake or hash for it",
            )
        if rule.kind == "shift" and type_ not in _DATES:
            raise RulesError(
                f"{rules.where(t, c)}: shift is for dates and timestamps, and {t}.{c} is {type_}",
                "use another transformer",
            )
        if rule.kind != "keep":
            basis = types[origin[(t, c)]] if (t, c) in origin else ""
            hashed = hashed_columns.setdefault(t, [])
            h = ""
            if rule.kind not in ("null", "fixed"):
                h = f"devkit_m.devkit_h{len(hashed)}"
                hashed.append(quote_ident(c))
            column = f"devkit_t.{quote_ident(c)}"
            result.expressions.setdefault(t, {})[c] = expression(rule, column, type_, basis, h)
    for t, hashed in hashed_columns.items():
        if hashed:
            result.joins[t] = hashes_join(hashed)
    return result
