"""What a backup reads from PostgreSQL's catalog: tables, columns, foreign keys, sequences."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from devkit.backup.session import BackupError

# Schemas that are PostgreSQL's own, never the app's.
# (%% is a literal % for psycopg2 when parameters are passed, and matches the same when they are not.)
_SYSTEM = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'"
MIGRATION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(), e.g. "numeric(10,2)", "timestamp with time zone", "integer[]"
    # Format 1's JSON rows (`--format json`) store these as their text: json/jsonb (so SQL NULL
    # and JSON null stay apart), arrays, composites, and types of extensions or the app (to_json
    # may turn those into nested JSON), domains by their base type. Every value in a row is then
    # a JSON scalar. (Format 2's COPY text prints every type as its own text.)
    as_text: bool


@dataclass(frozen=True)
class Table:
    oid: int
    schema: str
    name: str
    columns: list[Column]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_name(qualified: str) -> str:
    schema, _, name = qualified.partition(".")
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def app_tables(cur) -> list[Table]:
    """Every ordinary table (partitions included) of the app's schemas, but the migration table
    and tables that belong to extensions. Generated columns are left out: they are recomputed."""
    cur.execute(
        f"""
        SELECT c.oid, n.nspname, c.relname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND {_SYSTEM}
          AND NOT (c.relname = %s)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
        ORDER BY n.nspname, c.relname
        """,
        (MIGRATION_TABLE,),
    )
    tables = cur.fetchall()
    cur.execute(
        """
        SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod),
               b.typcategory IN ('A', 'C') OR b.typname IN ('json', 'jsonb') OR b.oid >= 16384
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
        WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
        ORDER BY a.attrelid, a.attnum
        """,
        ([oid for oid, _, _ in tables],),
    )
    columns: dict[int, list[Column]] = {}
    for oid, name, type_, as_text in cur.fetchall():
        columns.setdefault(oid, []).append(Column(name, type_, as_text))
    return [Table(oid, schema, name, columns.get(oid, [])) for oid, schema, name in tables]


def estimated_rows(cur, oids: list[int]) -> int:
    """The planner's row estimate for these tables (0 for tables never analysed)."""
    cur.execute(
        "SELECT sum(greatest(reltuples, 0))::bigint FROM pg_class WHERE oid = ANY(%s)", (oids,)
    )
    return int(cur.fetchone()[0] or 0)


def table_sizes(cur, oids: list[int]) -> dict[int, int]:
    """Bytes on disk per table (its heap), to read the largest first."""
    cur.execute("SELECT oid, pg_relation_size(oid) FROM pg_class WHERE oid = ANY(%s)", (oids,))
    return dict(cur.fetchall())


@dataclass(frozen=True)
class ForeignKey:
    name: str
    child: str  # schema.table
    parent: str
    child_columns: list[str]
    parent_columns: list[str]


def foreign_keys(cur) -> list[ForeignKey]:
    cur.execute(
        """
        SELECT k.conname, cn.nspname || '.' || c.relname, pn.nspname || '.' || p.relname,
               ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
                     JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
               ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
                     JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i)
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
        JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
        WHERE k.contype = 'f' AND k.conparentid = 0
        ORDER BY 2, 1
        """
    )
    return [ForeignKey(*row) for row in cur.fetchall()]


@dataclass(frozen=True)
class SetAside:
    """An index a load drops before a big table's rows and builds again after them, in the same
    transaction (PostgreSQL's manual, "Populating a Database": creating an index on loaded rows
    is quicker than updating it row by row)."""

    drop: str
    build: str


def indexes_to_set_aside(cur, table: Table) -> list[SetAside]:
    """TABLE's indexes that the session's role may drop and build again as they were: plain
    indexes and UNIQUE constraints, never a primary key, an exclusion constraint, an index a
    foreign key or anything else depends on, one of a partition tree, a clustered or replica
    identity index, or one with a comment, a tablespace or statistics settings of its own (none
    of which pg_get_indexdef or pg_get_constraintdef gives back), nor a constraint's index with
    storage options (WITH (fillfactor = 80): pg_get_constraintdef leaves them out)."""
    cur.execute(
        """
        SELECT x.relname, k.conname, pg_get_indexdef(i.indexrelid), pg_get_constraintdef(k.oid)
        FROM pg_index i
        JOIN pg_class x ON x.oid = i.indexrelid
        LEFT JOIN pg_constraint k ON k.conindid = i.indexrelid AND k.conrelid = i.indrelid
        WHERE i.indrelid = %s AND NOT i.indisprimary AND NOT i.indisexclusion
          AND i.indisvalid AND i.indisready AND i.indislive
          AND NOT i.indisclustered AND NOT i.indisreplident
          AND (k.oid IS NULL OR (k.contype = 'u' AND k.conparentid = 0 AND x.reloptions IS NULL))
          AND x.reltablespace = 0 AND pg_has_role(x.relowner, 'USAGE')
          AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid
                                                         OR h.inhparent = i.indexrelid)
          AND NOT EXISTS (SELECT 1 FROM pg_description c
                          WHERE c.objoid = i.indexrelid OR c.objoid = k.oid)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.deptype = 'n'
                          AND (d.refobjid = i.indexrelid OR d.refobjid = k.oid))
          AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0)
        ORDER BY x.relname
        """,
        (table.oid,),
    )
    table_name = sql_name(table.qualified)
    aside = []
    for index, constraint, index_def, constraint_def in cur.fetchall():
        if constraint is None:
            drop = f"DROP INDEX {quote_ident(table.schema)}.{quote_ident(index)}"
            aside.append(SetAside(drop, index_def))
        else:
            drop = f"ALTER TABLE {table_name} DROP CONSTRAINT {quote_ident(constraint)}"
            build = f"ALTER TABLE {table_name} ADD CONSTRAINT {quote_ident(constraint)} {constraint_def}"
            aside.append(SetAside(drop, build))
    return aside


def dependencies(keys: list[ForeignKey]) -> list[tuple[str, str]]:
    """(child, parent) pairs of qualified table names, for ordering loads."""
    return [(k.child, k.parent) for k in keys if k.child != k.parent]


def orphan_query(key: ForeignKey) -> str:
    """One row when some child row points at no parent row (MATCH SIMPLE: NULLs never do)."""
    child = [f"c.{quote_ident(n)}" for n in key.child_columns]
    parent = [f"p.{quote_ident(n)}" for n in key.parent_columns]
    present = " AND ".join(f"{c} IS NOT NULL" for c in child)
    joined = " AND ".join(f"{p} = {c}" for p, c in zip(parent, child, strict=True))
    return (
        f"SELECT 1 FROM {sql_name(key.child)} c WHERE {present} "
        f"AND NOT EXISTS (SELECT 1 FROM {sql_name(key.parent)} p WHERE {joined}) LIMIT 1"
    )


def sequences(cur) -> dict[str, list]:
    """Every sequence of the app's schemas: [last_value, is_called]."""
    cur.execute(
        f"""
        SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'S' AND {_SYSTEM} ORDER BY 1, 2
        """
    )
    found = {}
    for schema, name in cur.fetchall():
        qualified = f"{schema}.{name}"
        cur.execute(f"SELECT last_value, is_called FROM {sql_name(qualified)}")
        last_value, is_called = cur.fetchone()
        found[qualified] = [last_value, is_called]
    return found


def sequence_owners(cur) -> dict[str, str]:
    """Sequence -> the table owning it (serial and identity columns, OWNED BY)."""
    cur.execute(
        """
        SELECT sn.nspname || '.' || s.relname, tn.nspname || '.' || t.relname
        FROM pg_class s JOIN pg_namespace sn ON sn.oid = s.relnamespace
        JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
             AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
        JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
        WHERE s.relkind = 'S'
        """
    )
    return dict(cur.fetchall())


def migration_table(cur) -> str | None:
    """The app's Alembic version table (schema.table), found in the app's schemas: the one of
    the connected role's schema, else public's, else the only one. None when there is none.

    Read only when it is a plain table: a view or a foreign table would run what the app
    defined in the reading session (BackupError names it)."""
    cur.execute(
        f"""
        SELECT n.nspname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relname = %s AND {_SYSTEM}
        ORDER BY n.nspname = current_user DESC, n.nspname = 'public' DESC, n.nspname
        """,
        (MIGRATION_TABLE,),
    )
    found = cur.fetchall()
    if not found:
        return None
    schema, kind = found[0]
    if kind != "r":
        raise BackupError(
            f"{schema}.{MIGRATION_TABLE} is not a plain table (pg_class.relkind {kind!r}): the kit "
            "reads the migration version only from the table Alembic makes",
            f"make {schema}.{MIGRATION_TABLE} a table again (DROP it and run `devkit db.migrate`, "
            "or `alembic stamp` the revision)",
        )
    return f"{schema}.{MIGRATION_TABLE}"


def migration_version(cur) -> str | None:
    table = migration_table(cur)
    if table is None:
        return None
    cur.execute(f"SELECT version_num FROM {sql_name(table)}")
    versions = sorted(row[0] for row in cur.fetchall())
    return ",".join(versions) if versions else None


def load_order(names: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """Parents before children (Kahn's algorithm); tables in a cycle keep their given order at the end."""
    wanted = set(names)
    parents = {name: {p for c, p in edges if c == name and p in wanted} for name in names}
    ordered: list[str] = []
    while True:
        ready = [n for n in names if n not in ordered and not (parents[n] - set(ordered))]
        if not ready:
            break
        ordered += ready
    return ordered + [n for n in names if n not in ordered]


def row_counts(cur, tables: list[str]) -> dict[str, int]:
    counts = {}
    for name in tables:
        cur.execute(f"SELECT count(*) FROM {sql_name(name)}")
        counts[name] = cur.fetchone()[0]
    return counts


def resolve_table(cur, name: str, app: Collection[str]) -> str | None:
    """A backup's table name as schema.table in this database (the earlier backup script's files are
    unqualified: the connected role's schema, else public), when it is one of the app's tables
    (`app`): a backup never writes into a system catalog (pg_catalog.pg_class) or a schema that
    is not the app's. The kit's sessions search pg_catalog only, so nothing else is looked up."""
    if "." in name:
        candidates = [sql_name(name)]
    else:
        cur.execute("SELECT current_user")
        candidates = [f"{quote_ident(cur.fetchone()[0])}.{quote_ident(name)}"]
        candidates.append(f"public.{quote_ident(name)}")
    for regclass in candidates:
        cur.execute(
            "SELECT n.nspname || '.' || c.relname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
            (regclass,),
        )
        row = cur.fetchone()
        if row:
            return row[0] if row[0] in app else None
    return None
