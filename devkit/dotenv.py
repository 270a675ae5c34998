"""The .env file format as Docker Compose reads it: the one parser of .env.local for the kit,
its Ansible roles (the stack role's merge_env filter) and its tests."""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from devkit.errors import DevkitError


class EnvFileError(DevkitError):
    """The env file cannot be read as Compose reads it. The message never holds a value."""


def read_env_file(path: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """The file's values as Compose reads them (expanding from `environ`); {} when there is no
    file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except IsADirectoryError:
        raise EnvFileError(
            f"{path} is a directory, not an env file",
            f"move it away (mv {path} {path}.dir), then run `devkit setup` to write the file",
        ) from None
    except PermissionError:
        raise EnvFileError(
            f"{path} cannot be read by user {getpass.getuser()}",
            f"give it back to that user: sudo chown $USER {path}",
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise EnvFileError(
            f"{path} is not UTF-8 (byte 0x{data[exc.start]:02x} on line {line})",
            "save it as UTF-8 (Compose reads only UTF-8); e.g. iconv -f latin1 -t utf-8",
        ) from None
    try:
        return parse_env(text.removeprefix("\ufeff"), environ)
    except ValueError as exc:
        raise EnvFileError(
            f"{path}: {exc}", "correct that line as Compose reads env files (KEY=value)"
        ) from None


# Compose's .env rules (compose-go's dotenv, as `docker compose config` shows them; every form is
# checked against it in tests/integration/test_envfile_compose.py):
# - `KEY=value`, `export KEY=value`, `KEY: value`; spaces around the key; `#` lines are comments;
# - unquoted: up to the line's end; a ` #` starts a comment; surrounding blanks are dropped;
#   `$NAME`, `${NAME}` and `${NAME:-default}` (`-`, `:+`, `+` too) are expanded, `$$` is `$`;
# - 'single quotes': as written (\' is '), over several lines if need be;
# - "double quotes": the escapes \n \r \t \" \\ \$ (other backslashes stay), expansion;
#   several lines;
# - after a closing quote the next statement starts (a `# comment`, or more KEY=value).
# Expansion sees the keys above it, then `environ` (Compose: the shell's environment).
_KEY = re.compile(r"[ \t]*(?:export[ \t]+)?([A-Za-z0-9_.]+)[ \t]*([=:]?)[ \t]*")
_EXPANSION = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<operator>:?[-+?])"
    r"(?P<word>(?:[^}\\]|\\.)*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# Escapes in double quotes; any other backslash stays as written.
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$"}
# In double quotes: an escape, or else an expansion (so `\$x` is a plain `$x`).
_ESCAPE_OR_EXPANSION = re.compile(r"\\(?P<escape>[nrt\"\\$])|" + _EXPANSION.pattern)


def _expand(
    value: str, known: Mapping[str, str], environ: Mapping[str, str], escapes: bool = False
) -> str:
    def one(match: re.Match[str]) -> str:
        if match.groupdict().get("escape"):
            return _ESCAPES[match["escape"]]
        if match[0] == "$$":
            return "$"
        name = match["braced"] or match["bare"]
        value = known.get(name, environ.get(name))
        operator, word = match["operator"], match["word"] or ""
        if not operator:
            return value or ""
        empty = value is None or (operator.startswith(":") and value == "")
        if operator.endswith("-"):
            return word if empty else value
        if operator.endswith("+"):
            return "" if empty else word
        if empty:
            raise ValueError(f"${{{name}}} is required but not set")
        return value

    return (_ESCAPE_OR_EXPANSION if escapes else _EXPANSION).sub(one, value)


def _statements(
    text: str, environ: Mapping[str, str], expand: bool = True
) -> Iterator[tuple[str, str | None, int, int]]:
    """Each statement as (key, value, start, end): `text[start:end]` is the statement (from its
    key, `export` included, to the end of its value: the line's end for an unquoted value, the
    closing quote for a quoted one). A bare KEY yields the environment's value, None when unset;
    with `expand` False values are not computed (None). ValueError (naming the line, never a
    value) for what Compose refuses."""
    values: dict[str, str] = {}
    pos, length = 0, len(text)
    while True:
        while pos < length and text[pos].isspace():
            pos += 1
        if pos >= length:
            return
        line_no = text.count("\n", 0, pos) + 1
        start = pos
        end_of_line = text.find("\n", pos)
        end_of_line = length if end_of_line < 0 else end_of_line
        if text[pos] == "#":
            pos = end_of_line
            continue
        match = _KEY.match(text, pos, end_of_line)
        if not match or not match[2]:
            if match and match.end() == end_of_line:  # a bare KEY: taken from the environment
                pos = end_of_line
                yield match[1], environ.get(match[1]), start, end_of_line
                continue
            raise ValueError(f"line {line_no} is not KEY=value")
        key, pos = match[1], match.end()
        quote = text[pos : pos + 1]
        value = None
        if quote in ("'", '"'):
            close = pos + 1
            while True:
                close = text.find(quote, close)
                if close < 0:
                    raise ValueError(f"line {line_no}: the value's {quote} quote is never closed")
                if text[close - 1] != "\\":
                    break
                close += 1
            raw = text[pos + 1 : close]
            if quote == "'":
                value = raw.replace("\\'", "'")
            elif expand:
                value = _expand(raw, values, environ, escapes=True)
            pos = close + 1  # Compose reads on from here: a `# comment` or the next statement
        else:
            raw = text[pos:end_of_line]
            comment = raw.find(" #")
            raw = raw[:comment] if comment >= 0 else raw
            if expand:
                value = _expand(raw.strip(), values, environ)
            pos = end_of_line
        if value is not None:
            values[key] = value
        yield key, value, start, pos


def parse_env(text: str, environ: Mapping[str, str]) -> dict[str, str]:
    """KEY=VALUE statements as Compose reads them (expanding from `environ`); ValueError
    (naming the line, never a value) for what Compose refuses."""
    return {key: value for key, value, _, _ in _statements(text, environ) if value is not None}


def env_keys(text: str) -> set[str]:
    """The keys a file sets, read as Compose reads it but without expanding any value (so a
    `${NAME:?}` the environment lacks is no error here). ValueError for a file Compose refuses."""
    return {key for key, _, _, _ in _statements(text, {}, expand=False)}


def merge_env(text: str, values: Mapping[str, str]) -> str:
    """`text` (an env file) with each KEY of `values` set where it first stands (its later
    statements removed: they would override it), the missing ones appended; every other byte
    kept. ValueError for a file Compose would refuse."""
    pending = dict(values)
    parts, kept_from = [], 0
    for key, _, start, end in _statements(text, {}, expand=False):
        if key not in values:
            continue
        if key in pending:
            parts += [text[kept_from:start], f"{key}={pending.pop(key)}"]
            kept_from = end
            continue
        # A later statement of a key the kit sets: dropped, with its line when it is alone there.
        line_start = text.rfind("\n", 0, start) + 1
        if not text[line_start:start].strip() and text[end : end + 1] in ("", "\n"):
            parts.append(text[kept_from:line_start])
            kept_from = end + 1
        else:
            parts.append(text[kept_from:start])
            kept_from = end
    parts.append(text[kept_from:])
    merged = "".join(parts)
    if merged and not merged.endswith("\n"):
        merged += "\n"
    return merged + "".join(f"{key}={value}\n" for key, value in pending.items())
