"""Editing VS Code's JSON-with-comments files (tasks.json, launch.json) without losing a byte.

VS Code's files carry comments and trailing commas, and users keep their own entries in them.
No JSON library round-trips those, so this module scans the text only to find spans (the top
level object, one key's array, each element and its `label`/`name`), and edits by replacing or
inserting text at those spans: everything outside the kit's own entries stays byte-for-byte.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from devkit.errors import DevkitError


class JsoncError(DevkitError):
    """The file is not JSON with comments as VS Code reads it."""


_SPACE = re.compile(r"(?:\s+|//[^\n]*(?:\n|$)|/\*.*?\*/)*", re.S)
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_SCALAR = re.compile(r"[^\s,\]\}/]+")
_REST_OF_LINE = re.compile(r"[ \t]*(?://[^\n]*|/\*[^\n]*?\*/[ \t]*)?(?=\n)|")


@dataclass(frozen=True)
class Element:
    start: int
    end: int  # exclusive
    key: str | None  # the value of the identifying field, when the element is an object


# Arrays and objects nested deeper than this are refused (a clean error, not Python's recursion
# limit); VS Code's own files nest four levels.
MAX_DEPTH = 200
# VS Code reads and keeps a UTF-8 byte order mark; so does merge().
_BOM = "\ufeff"


class _Scanner:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.pos = 0
        self.depth = 0

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"arrays or objects nested deeper than {MAX_DEPTH} levels")

    def fail(self, what: str) -> JsoncError:
        line = self.text.count("\n", 0, self.pos) + 1
        return JsoncError(
            f"{self.name}: {what} at line {line}",
            "fix the file (VS Code shows the error too), then run the command again",
        )

    def space(self) -> None:
        self.pos = _SPACE.match(self.text, self.pos).end()

    def peek(self) -> str:
        self.space()
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {char!r}")
        self.pos += 1

    def string(self) -> str:
        self.space()
        m = _STRING.match(self.text, self.pos)
        if not m:
            raise self.fail("expected a string")
        self.pos = m.end()
        try:
            return json.loads(m.group())
        except ValueError:
            self.pos = m.start()
            raise self.fail("a string with an invalid \\ escape") from None

    def value(self, want: str | None = None) -> str | None:
        """Skip one value; for an object, return its `want` field when that is a string."""
        char = self.peek()
        if char == "{":
            return self.object(want)
        if char == "[":
            self.pos += 1
            self.nest()
            while self.peek() != "]":
                self.value()
                if self.peek() == ",":
                    self.pos += 1
                elif self.peek() != "]":
                    raise self.fail("expected ',' or ']'")
            self.pos += 1
            self.depth -= 1
            return None
        if char == '"':
            self.string()
            return None
        m = _SCALAR.match(self.text, self.pos)
        if not m:
            raise self.fail("expected a value")
        self.pos = m.end()
        return None

    def object(self, want: str | None = None, members: dict | None = None) -> str | None:
        """Skip an object; record each member's value span in `members` (key -> (start, end))."""
        found = None
        self.expect("{")
        self.nest()
        while self.peek() != "}":
            key = self.string()
            self.expect(":")
            self.space()
            start = self.pos
            if key == want and self.peek() == '"':
                found = self.string()
            else:
                self.value()
            if members is not None:
                members[key] = (start, self.pos)
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "}":
                raise self.fail("expected ',' or '}'")
        self.pos += 1
        self.depth -= 1
        return found


def _array_elements(text: str, start: int, field: str, name: str) -> tuple[list[Element], int]:
    """The elements of the array at `start` and the position of its closing bracket."""
    scan = _Scanner(text, name)
    scan.pos = start
    scan.expect("[")
    elements = []
    while scan.peek() != "]":
        element_start = scan.pos
        key = scan.value(field)
        elements.append(Element(element_start, scan.pos, key))
        if scan.peek() == ",":
            scan.pos += 1
        elif scan.peek() != "]":
            raise scan.fail("expected ',' or ']'")
    return elements, scan.pos


def _indent_of(text: str, pos: int) -> str:
    line_start = text.rfind("\n", 0, pos) + 1
    return re.match(r"[ \t]*", text[line_start:]).group()


def _render(value: dict, indent: str) -> str:
    return json.dumps(value, indent=4, ensure_ascii=False).replace("\n", "\n" + indent)


def _after_space(text: str, pos: int) -> int:
    return _SPACE.match(text, pos).end()


def merge(
    text: str,
    key: str,
    entries: list[dict],
    field: str,
    name: str = "file",
    new_file: dict | None = None,
) -> str:
    """`text` with the array under top-level `key` holding `entries`: an element whose `field`
    equals an entry's is replaced by it, the others appended; the rest of the text is kept.
    An empty `text` (no file yet) starts as `new_file` (e.g. {"version": "2.0.0"}). A byte order
    mark the file starts with stays."""
    if text.startswith(_BOM):
        return _BOM + merge(text[len(_BOM) :], key, entries, field, name, new_file)
    if not text.strip():
        text = _render(new_file or {}, "") + "\n"
    scan = _Scanner(text, name)
    members: dict[str, tuple[int, int]] = {}
    scan.object(members=members)
    if scan.peek():
        raise scan.fail("unexpected text after the top-level object")
    if key not in members:
        # A new last member of the top-level object.
        addition = f'"{key}": ' + _render(entries, "    ")
        if members:
            end = members[list(members)[-1]][1]
            after = _after_space(text, end)
            has_comma = text[after : after + 1] == ","
            at = after + 1 if has_comma else end
            at = _REST_OF_LINE.match(text, at).end()  # a same-line comment stays
            return (
                text[:end]
                + ("" if has_comma else ",")
                + text[end:at]
                + "\n    "
                + addition
                + text[at:]
            )
        opening = _after_space(text, 0) + 1
        return text[:opening] + "\n    " + addition + "\n" + text[opening:].lstrip("\n")
    start, _ = members[key]
    if text[start] != "[":
        raise scan.fail(f'"{key}" is not an array')
    elements, _close = _array_elements(text, start, field, name)
    wanted = {entry[field]: entry for entry in entries}
    out, last = [], 0
    for element in elements:
        if element.key in wanted:
            indent = _indent_of(text, element.start)
            out += [text[last : element.start], _render(wanted.pop(element.key), indent)]
            last = element.end
    if wanted:
        if elements:
            indent = _indent_of(text, elements[0].start)
            tail = elements[-1].end
            after = _after_space(text, tail)
            has_comma = text[after : after + 1] == ","
            at = after + 1 if has_comma else tail
            # A comment on the same line stays with the element it describes.
            at += _REST_OF_LINE.match(text, at).end() - at
            out += [text[last:tail], "" if has_comma else ",", text[tail:at]]
        else:
            indent = _indent_of(text, start) + "    "
            at = start + 1
            out.append(text[last:at])
        added = ",".join("\n" + indent + _render(entry, indent) for entry in wanted.values())
        out.append(added + ("" if elements else "\n" + _indent_of(text, start)))
        last = at
    out.append(text[last:])
    return "".join(out)


def entry(text: str, key: str, field: str, value: str, name: str = "file") -> dict | None:
    """The element of the array under top-level `key` whose `field` is `value`, read as JSON
    (the kit writes its own entries as plain JSON); None when there is none, or it is not plain
    JSON (an entry edited by hand)."""
    text = text.removeprefix(_BOM)
    if not text.strip():
        return None
    scan = _Scanner(text, name)
    members: dict[str, tuple[int, int]] = {}
    scan.object(members=members)
    if key not in members:
        return None
    elements, _ = _array_elements(text, members[key][0], field, name)
    for element in elements:
        if element.key == value:
            try:
                found = json.loads(text[element.start : element.end])
            except json.JSONDecodeError:
                return None
            return found if isinstance(found, dict) else None
    return None
