"""A subset of the server's rows, chosen inside the backup's snapshot (the leader's session):
the root table's rows that match a condition (or a percentage of them), every row a kept row
references (parents, to completeness: the copy passes every foreign key), and the rows that
reference the root's side (children) up to a number per table. Cycles (a table referencing
itself, two referencing each other) end because the sets only grow. Tables no foreign key
joins to the root come whole.

The rows are kept as physical row ids (ctid) in temporary tables: stable within the snapshot
(the backup holds every table's lock, so nothing moves them), and joined without the tables'
keys having to be known.
"""

from __future__ import annotations

from devkit.backup.catalog import ForeignKey, Table, quote_ident, sql_name
from devkit.pull.rules import Rules, RulesError


def _join(key: ForeignKey) -> str:
    return " AND ".join(
        f"c.{quote_ident(c)} = p.{quote_ident(p)}"
        for c, p in zip(key.child_columns, key.parent_columns, strict=True)
    )


def _reached(root: str, keys: list[ForeignKey]) -> set[str]:
    """The tables joined to ROOT by foreign keys, either way."""
    found, todo = {root}, [root]
    while todo:
        table = todo.pop()
        for key in keys:
            for a, b in ((key.child, key.parent), (key.parent, key.child)):
                if a == table and b not in found:
                    found.add(b)
                    todo.append(b)
    return found


def choose(cur, tables: dict[str, Table], keys: list[ForeignKey], rules: Rules) -> dict[str, str]:
    """The condition on each table's rows (table → SQL) for the rules' subset."""
    subset = rules.subset
    assert subset is not None
    if subset.root not in tables:
        raise RulesError(
            f"{rules.where('subset')}: the subset's root {subset.root} is no table of the database",
            "name one of the app's tables (schema.table)",
        )
    joined = _reached(subset.root, keys)
    keep = {t: f"pg_temp.devkit_keep_{i}" for i, t in enumerate(sorted(joined))}
    down = {t: f"pg_temp.devkit_down_{i}" for i, t in enumerate(sorted(joined))}
    for name in [*keep.values(), *down.values()]:
        cur.execute(f"CREATE TEMP TABLE {name} (tid tid PRIMARY KEY) ON COMMIT DROP")
    root = sql_name(subset.root)
    if subset.where:
        chosen = f"SELECT ctid FROM ONLY {root} WHERE ({subset.where})"
    else:
        chosen = (
            f"SELECT ctid FROM ONLY {root} TABLESAMPLE BERNOULLI ({subset.percent}) REPEATABLE (0)"
        )
    import psycopg2

    try:
        cur.execute(f"INSERT INTO {keep[subset.root]} {chosen}")
    except psycopg2.Error as exc:  # the condition is the rule file's SQL: say so, in one line
        raise RulesError(
            f"{rules.where('subset')}: the subset's where is not a condition on "
            f"{subset.root} ({exc.pgcode}: {(exc.diag.message_primary or '').strip()[:200]})",
            'write a condition on its columns, e.g. `where: "store_id = 1"`',
        ) from None
    cur.execute(f"INSERT INTO {down[subset.root]} SELECT tid FROM {keep[subset.root]}")
    added = {t: 0 for t in joined}  # children taken per table
    inside = [k for k in keys if k.child in joined and k.parent in joined]
    while True:
        grew = 0
        for key in inside:
            child, parent = sql_name(key.child), sql_name(key.parent)
            # The rows kept children reference: every one (the copy must pass its keys).
            cur.execute(
                f"INSERT INTO {keep[key.parent]} SELECT p.ctid FROM ONLY {parent} p "
                f"JOIN ONLY {child} c ON {_join(key)} "
                f"WHERE c.ctid IN (SELECT tid FROM {keep[key.child]}) ON CONFLICT DO NOTHING"
            )
            grew += cur.rowcount
            room = subset.children - added[key.child]
            if room <= 0:
                continue
            # Rows referencing the root's side, up to `children` per table.
            cur.execute(
                f"WITH new AS (INSERT INTO {down[key.child]} SELECT DISTINCT c.ctid FROM ONLY {child} c "
                f"JOIN ONLY {parent} p ON {_join(key)} "
                f"WHERE p.ctid IN (SELECT tid FROM {down[key.parent]}) "
                f"AND c.ctid NOT IN (SELECT tid FROM {keep[key.child]}) LIMIT {room} "
                f"ON CONFLICT DO NOTHING RETURNING tid) "
                f"INSERT INTO {keep[key.child]} SELECT tid FROM new ON CONFLICT DO NOTHING"
            )
            added[key.child] += cur.rowcount
            grew += cur.rowcount
        if not grew:
            break
    return {t: f"devkit_t.ctid IN (SELECT tid FROM {keep[t]})" for t in joined}
