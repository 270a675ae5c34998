"""How the tests read what the kit says: facts on one line, not whole sentences.

A message is checked by the facts it must carry (a port, a path, a revision, a command to copy)
and one short key phrase, all on the same line. Rewording a message then breaks no test, while a
message that loses a fact, or splits it from the rest of its line, still does.
"""

from __future__ import annotations


def line_with(text: str, *parts: object) -> str:
    """The first line of TEXT that holds every one of PARTS (each as str); fails showing TEXT."""
    wanted = [str(part) for part in parts]
    for line in text.splitlines():
        if all(part in line for part in wanted):
            return line
    raise AssertionError(f"no line holds all of {wanted!r} in:\n{text[-3000:]}")


def says(text: str, *parts: object) -> str:
    """TEXT with its whitespace runs made one space (a message wrapped to the terminal's width
    reads as one), checked to hold every one of PARTS; fails showing TEXT."""
    joined = " ".join(text.split())
    missing = [str(part) for part in parts if str(part) not in joined]
    if missing:
        raise AssertionError(f"{missing!r} not said in:\n{text[-3000:]}")
    return joined
