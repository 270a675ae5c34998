"""The app's masking rules: `db-pull.yaml` in the app's directory, one rule per column, and an
optional subset. Read with the line of every entry, so that each mistake names its line; the
server checks the same rules again (without lines) against its own catalog (masks.py).

    tables:
      public.customer:          # schema.table (public. may be left out)
        email: {fake: email}
        first_name: {fake: first_name}
        phone: {format: "090-xxxx-xxxx"}
        birth_date: {shift: 30}   # days, either way
        note: null                # NULL
        api_token: hash           # HMAC-SHA256 with the server's key
        country: {fixed: JP}
        customer_id: keep
    subset:
      root: public.customer
      where: "store_id = 1"       # or percent: 10
      children: 1000              # rows per table reached from the root's side

Written by hand here (not pydantic): a YAML node carries its line, a pydantic error does not.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from devkit.errors import BadArgument

FILE_NAME = "db-pull.yaml"
# Transformers taking no argument, and those taking one (its kind).
PLAIN = ("keep", "null", "hash")
WITH_ARGUMENT = {"fixed": "a value", "fake": "a kind", "shift": "days", "format": "a pattern"}
FAKES = (
    "name", "first_name", "last_name", "name_ja", "first_name_ja", "last_name_ja", "email",
    "phone", "phone_ja", "address", "address_ja", "city", "company", "ip",
)  # fmt: skip
FORMAT_PLACEHOLDERS = "x?"  # x: a digit, ?: a letter a-z; anything else is kept


class RulesError(BadArgument):
    """The rule file (or the rules a laptop sent) cannot be used."""


@dataclass(frozen=True)
class Rule:
    kind: str  # keep, null, hash, fixed, fake, shift, format
    argument: object = None

    def describe(self) -> str:
        return self.kind if self.argument is None else f"{self.kind}: {self.argument}"

    def as_json(self) -> list:
        return [self.kind] if self.argument is None else [self.kind, self.argument]


@dataclass(frozen=True)
class Subset:
    root: str
    where: str = ""
    percent: float = 0.0
    children: int = 1000


@dataclass
class Rules:
    tables: dict[str, dict[str, Rule]]
    subset: Subset | None = None
    lines: dict[str, int] = field(default_factory=dict)  # "table" / "table.column" → line
    source: str = FILE_NAME

    def where(self, *path: str) -> str:
        """ "db-pull.yaml, line N" for an entry, or the file's name when unknown."""
        line = self.lines.get(".".join(path))
        return f"{self.source}, line {line}" if line else self.source

    def as_json(self) -> str:
        """What the laptop sends the server (the lines go too: the server names them)."""
        return json.dumps(
            {
                "tables": {
                    t: {c: r.as_json() for c, r in cols.items()} for t, cols in self.tables.items()
                },
                "subset": self.subset.__dict__ if self.subset else None,
                "lines": self.lines,
                "source": self.source,
            },
            ensure_ascii=False,
            sort_keys=True,
        )

    def digest(self) -> str:
        """The rules' own hash (not the file's: comments and order do not count)."""
        plain = json.loads(self.as_json())
        plain.pop("lines"), plain.pop("source")
        return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()


def qualified(name: str) -> str:
    return name if "." in name else f"public.{name}"


def rule_of(value: object, where: str) -> Rule:
    """One column's rule from its YAML value: a name (keep, null, hash) or a one-key mapping."""
    if value is None or value == "null":
        return Rule("null")
    if isinstance(value, str):
        if value in PLAIN:
            return Rule(value)
        raise RulesError(
            f"{where}: unknown transformer {value!r}",
            f"use one of: {', '.join(PLAIN)}, or {{{': …}, {'.join(WITH_ARGUMENT)}: …}}",
        )
    if not isinstance(value, dict) or len(value) != 1:
        raise RulesError(
            f"{where}: a rule is a name (keep, null, hash) or one transformer with its argument",
            "write e.g. `email: {fake: email}` or `note: null`",
        )
    ((kind, argument),) = value.items()
    if kind not in WITH_ARGUMENT:
        raise RulesError(
            f"{where}: unknown transformer {kind!r}",
            f"use one of: {', '.join(PLAIN)}, {', '.join(WITH_ARGUMENT)}",
        )
    if kind == "fixed":
        if isinstance(argument, (dict, list)):
            raise RulesError(f"{where}: fixed takes one value", "write e.g. `{fixed: JP}`")
        return Rule(kind, argument if argument is None else str(argument))
    if kind == "fake":
        if argument not in FAKES:
            raise RulesError(
                f"{where}: unknown fake {argument!r}", f"use one of: {', '.join(FAKES)}"
            )
        return Rule(kind, argument)
    if kind == "shift":
        if isinstance(argument, bool) or not isinstance(argument, int) or not 0 < argument <= 36500:
            raise RulesError(
                f"{where}: shift takes a number of days (1 to 36500)", "write e.g. `{shift: 30}`"
            )
        return Rule(kind, argument)
    # format
    if not isinstance(argument, str) or not any(c in FORMAT_PLACEHOLDERS for c in argument):
        raise RulesError(
            f"{where}: format takes a pattern with x (a digit) or ? (a letter)",
            'write e.g. `{format: "090-xxxx-xxxx"}`',
        )
    if sum(c in FORMAT_PLACEHOLDERS for c in argument) > 32:
        raise RulesError(f"{where}: a format has at most 32 x or ?", "shorten the pattern")
    return Rule(kind, argument)


_IDENT = re.compile(r"^[^.\s]+(\.[^.\s]+)?$")


def _subset(value: object, where: str) -> Subset:
    if not isinstance(value, dict):
        raise RulesError(
            f"{where}: subset is a mapping", "write `subset: {root: TABLE, percent: 10}`"
        )
    unknown = set(value) - {"root", "where", "percent", "children"}
    if unknown:
        raise RulesError(
            f"{where}: subset has no {', '.join(sorted(map(str, unknown)))}",
            "subset takes root, where, percent and children",
        )
    root = value.get("root")
    if not isinstance(root, str) or not _IDENT.match(root):
        raise RulesError(f"{where}: subset needs a root table", "write `root: public.customer`")
    condition, percent = value.get("where") or "", value.get("percent") or 0
    if not isinstance(condition, str):
        raise RulesError(f"{where}: subset's where is SQL text", 'write `where: "store_id = 1"`')
    if (
        isinstance(percent, bool)
        or not isinstance(percent, (int, float))
        or not 0 <= percent <= 100
    ):
        raise RulesError(f"{where}: subset's percent is 0 to 100", "write `percent: 10`")
    if bool(condition) == bool(percent):
        raise RulesError(
            f"{where}: subset takes one of where and percent",
            'write `where: "store_id = 1"` or `percent: 10`',
        )
    children = value.get("children", 1000)
    if isinstance(children, bool) or not isinstance(children, int) or children < 0:
        raise RulesError(
            f"{where}: subset's children is a number of rows", "write `children: 1000`"
        )
    return Subset(qualified(root), condition, float(percent), children)


def from_plain(data: object, lines: dict[str, int] | None = None, source: str = FILE_NAME) -> Rules:
    """Rules from the file's data (or the JSON a laptop sent), every entry checked."""
    lines = lines or {}

    def where(*path: str) -> str:
        line = lines.get(".".join(path))
        return f"{source}, line {line}" if line else source

    if not isinstance(data, dict):
        raise RulesError(
            f"{source}: expected a mapping with `tables:`", "see `devkit db.pull.init`"
        )
    unknown = set(data) - {"tables", "subset"}
    if unknown:
        key = sorted(map(str, unknown))[0]
        raise RulesError(
            f"{where(key)}: unknown entry {key!r}", "the file holds tables: and subset:"
        )
    tables = data.get("tables")
    if not isinstance(tables, dict) or not tables:
        raise RulesError(f"{where('tables')}: no tables", "see `devkit db.pull.init`")
    rules: dict[str, dict[str, Rule]] = {}
    for table, columns in tables.items():
        if not isinstance(table, str) or not _IDENT.match(table):
            raise RulesError(
                f"{where(str(table))}: {table!r} is no table name", "write schema.table"
            )
        if not isinstance(columns, dict) or not columns:
            raise RulesError(
                f"{where(table)}: {table} needs its columns, each with a rule",
                "write `column: keep` (or another transformer) under it",
            )
        name = qualified(table)
        if name in rules:
            raise RulesError(f"{where(table)}: {name} appears twice", "keep one")
        rules[name] = {
            str(column): rule_of(value, where(table, str(column)))
            for column, value in columns.items()
        }
    subset = data.get("subset")
    # The lines again under the tables' qualified names, as the server names what it finds.
    by_name = {"subset": lines["subset"]} if "subset" in lines else {}
    for table, columns in tables.items():
        name = qualified(table)
        if table in lines:
            by_name[name] = lines[table]
        for column in columns:
            if f"{table}.{column}" in lines:
                by_name[f"{name}.{column}"] = lines[f"{table}.{column}"]
    chosen = _subset(subset, where("subset")) if subset is not None else None
    return Rules(rules, chosen, by_name, source)


def _lines(node) -> dict[str, int]:
    """The line (1-based) of `tables`, `subset`, each table and each column of the document."""
    import yaml

    lines: dict[str, int] = {}
    if not isinstance(node, yaml.MappingNode):
        return lines
    for key, value in node.value:
        lines[str(key.value)] = key.start_mark.line + 1
        if key.value == "tables" and isinstance(value, yaml.MappingNode):
            for table, columns in value.value:
                lines[str(table.value)] = table.start_mark.line + 1
                if isinstance(columns, yaml.MappingNode):
                    for column, _ in columns.value:
                        lines[f"{table.value}.{column.value}"] = column.start_mark.line + 1
    return lines


def load(app_dir: Path) -> Rules:
    """The app's db-pull.yaml, checked (RulesError names the line)."""
    import yaml

    path = app_dir / FILE_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError(
            f"no {FILE_NAME} in {app_dir}: every column needs a masking rule before a pull",
            "write a first one from the app's tables: devkit db.pull.init (then review it)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"cannot read {path}: {exc}", f"check the file: ls -l {path}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context, begun = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and begun and begun is not mark:  # where the construct it could not end began
            problem += f"; {context} at line {begun.line + 1}, column {begun.column + 1}"
        raise RulesError(
            f"{FILE_NAME}{at} is not valid YAML ({problem})", "correct that line"
        ) from None
    return from_plain(data, _lines(node), FILE_NAME)


def from_json(text: str) -> Rules:
    """The rules a laptop sent (Rules.as_json), checked again."""
    try:
        data = json.loads(text)
    except ValueError:
        raise RulesError("the rules sent are not JSON", "run db.pull from the laptop") from None
    if not isinstance(data, dict):
        raise RulesError("the rules sent are not a mapping", "run db.pull from the laptop")
    lines = {str(k): int(v) for k, v in (data.get("lines") or {}).items() if isinstance(v, int)}
    subset = data.get("subset")
    if isinstance(subset, dict):
        subset = {
            k: v
            for k, v in subset.items()
            if not (k == "percent" and not v) and not (k == "where" and not v)
        }
    tables = {
        t: {c: _from_list(r) for c, r in cols.items()} if isinstance(cols, dict) else cols
        for t, cols in (data.get("tables") or {}).items()
    }
    # Lines were sent under qualified names: from_plain looks them up as written, which these are.
    return from_plain(
        {"tables": tables, **({"subset": subset} if subset else {})},
        lines,
        str(data.get("source") or FILE_NAME),
    )


def _from_list(rule: object) -> object:
    """A rule as Rule.as_json wrote it, back as the file's form."""
    if isinstance(rule, list) and len(rule) == 1 and rule[0] in PLAIN:
        return rule[0]
    if isinstance(rule, list) and len(rule) == 2:
        return {rule[0]: rule[1]}
    return rule
