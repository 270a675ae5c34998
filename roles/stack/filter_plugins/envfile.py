"""merge_env: an env file's text with the kit's keys set, every other line kept as it was."""

import re

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def merge_env(text, values):
    """Set each KEY of `values` where it stands (first occurrence), append the missing ones."""
    pending = dict(values)
    lines = []
    for line in (text or "").splitlines():
        match = _ASSIGNMENT.match(line)
        key = match.group(1) if match else None
        if key in pending:
            lines.append(f"{key}={pending.pop(key)}")
        elif key in values:
            continue  # a later duplicate of a key the kit sets would override it
        else:
            lines.append(line)
    lines += [f"{key}={value}" for key, value in pending.items()]
    return "\n".join(lines) + "\n"


class FilterModule:
    def filters(self):
        return {"merge_env": merge_env}
