"""`devkit db.pull.init`: a first db-pull.yaml from the app's own tables (its local database):
a rule for every column, guessed from its name and type, the personal-looking ones marked
`# guessed` for review. Everything else is kept; a column that references a masked key needs no
rule of its own (it follows the key), so keys are kept here."""

from __future__ import annotations

import re

from devkit.backup.catalog import ForeignKey, Table

# (pattern on the column's name, rule when the column may be NULL, rule when it may not)
_GUESSES = (
    (r"e_?mail", "{fake: email}", "{fake: email}"),
    (r"(first|given|fore)_?name", "{fake: first_name}", "{fake: first_name}"),
    (r"(last|family|sur)_?name|surname", "{fake: last_name}", "{fake: last_name}"),
    (r"(full_?|display_?|real_?)?name|kana|furigana", "{fake: name}", "{fake: name}"),
    (r"phone|tel|mobile|fax", "{fake: phone}", "{fake: phone}"),
    (r"address|street|addr[0-9]?|line[0-9]", "{fake: address}", "{fake: address}"),
    (r"city|town", "{fake: city}", "{fake: city}"),
    (r"zip|postal|post_?code", '{format: "xxx-xxxx"}', '{format: "xxx-xxxx"}'),
    (r"ip(_?addr(ess)?)?|remote_addr", "{fake: ip}", "{fake: ip}"),
    (r"birth|dob|birthday", "{shift: 30}", "{shift: 30}"),
    (r"password|passwd|pass_?hash|hashed_password|token|secret|api_?key|salt|otp", "null", "hash"),
    (r"note|notes|comment|memo|remarks|bio|description", "null", "{fixed: masked}"),
    (r"company|organi[sz]ation|employer", "{fake: company}", "{fake: company}"),
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def guess(column: str, type_: str, nullable: bool) -> str:
    """The rule for one column ('keep' when nothing personal shows)."""
    name = column.lower()
    if name == "username" or name.endswith("_username"):
        return "hash"
    if type_ in ("boolean", "smallint", "integer", "bigint", "uuid") or type_.startswith("numeric"):
        if re.search(r"birth", name):
            return "{shift: 30}"
        return "keep"
    for pattern, when_null, when_not in _GUESSES:
        if re.fullmatch(rf"(.*_)?({pattern})(_.*)?", name):
            rule = when_null if nullable else when_not
            if rule.startswith("{shift") and not type_.startswith(("date", "timestamp")):
                return "hash"
            return rule
    return "keep"


def first_file(
    tables: dict[str, Table], keys: list[ForeignKey], not_null: set[tuple[int, str]]
) -> str:
    """db-pull.yaml's text: every table and column with its guessed rule."""
    follows = {(k.child, c) for k in keys for c in k.child_columns}
    lines = [
        '# How `devkit db.pull` masks each column on the server before it leaves (README, "Pulling a',
        '# masked copy"). Every column needs a rule: keep, null, hash, {fixed: V}, {fake: KIND},',
        '# {shift: DAYS}, {format: "090-xxxx-xxxx"}. Fakes: name, first_name, last_name, name_ja,',
        "# first_name_ja, last_name_ja, email, phone, phone_ja, address, address_ja, city, company, ip.",
        "# A column referencing a masked key follows it (leave it out). Review every `# guessed`,",
        "# and every `keep` of a text column: written by devkit db.pull.init.",
        "tables:",
    ]
    for name, table in sorted(tables.items()):
        lines.append(f"  {name}:")
        for column in table.columns:
            if (name, column.name) in follows:
                lines.append(f"    # {column.name}: follows the key it references")
                continue
            rule = guess(column.name, column.type, (table.oid, column.name) not in not_null)
            note = (
                "  # guessed"
                if rule != "keep"
                else (
                    "  # text: check"
                    if column.type in ("text",) or column.type.startswith(("character", "varchar"))
                    else ""
                )
            )
            key = (
                column.name
                if _WORD.fullmatch(column.name)
                else '"' + column.name.replace('"', '\\"') + '"'
            )
            lines.append(f"    {key}: {rule}{note}")
    referenced = sorted(tables, key=lambda t: -sum(k.parent == t for k in keys))
    lines += [
        "# A subset instead of every row (uncomment): the root's rows, what they reference, and",
        "# up to `children` rows per table that reference them.",
        "# subset:",
        f"#   root: {referenced[0] if referenced else 'public.customer'}",
        '#   percent: 10          # or where: "store_id = 1"',
        "#   children: 1000",
    ]
    return "\n".join(lines) + "\n"
