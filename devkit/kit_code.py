"""Which of the kit's own Python modules a part of the kit can run, read from its files and never
imported: the modules a file names (its imports, wherever they are in it, and dotted names in its
text, such as a task's `-m devkit.dbroles` or the probe "devkit.readiness:pg_version"), and all
that those import in turn.

`devkit setup` fingerprints only the modules its playbook can run (devkit/setup_record.py): a
`git pull` that changed other code (a task, the backup format) leaves its playbook skipped.
devkit/ansible_playbook.py imports what the filter plugins import before Ansible forks.

`compile_kit`: setup byte-compiles the kit's modules, for a fast start of every command.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from devkit.paths import KIT_ROOT

PACKAGE = "devkit"
# A dotted name under the kit's package, as a task, a template or a string in code spells it.
DOTTED = re.compile(rf"\b{PACKAGE}(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
# `from devkit import a, b` (or with parentheses over several lines).
FROM_PACKAGE = re.compile(rf"^[ \t]*from {PACKAGE} import \(?([\w\s,]+)\)?", re.MULTILINE)


def imported(path: Path) -> set[str]:
    """The kit's modules Python file PATH imports, at its top or inside a function
    (`from devkit import x` names devkit.x)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            if node.module == PACKAGE:
                names.update(f"{PACKAGE}.{alias.name}" for alias in node.names)
    return {name for name in names if name.split(".")[0] == PACKAGE}


def mentioned(path: Path) -> set[str]:
    """The kit's modules file PATH names: every dotted name (an import, a task's `-m`, a string;
    those that are no module, an attribute's or a label's, are dropped by module_file), and the
    modules of `from devkit import a, b`. Read as text: parsing every module (imported) took
    0.25 s of each `setup`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return set()
    names = set(DOTTED.findall(text))
    for listed in FROM_PACKAGE.findall(text):
        names.update(f"{PACKAGE}.{name}" for name in re.findall(r"\w+", listed))
    return names


def module_file(name: str, root: Path = KIT_ROOT) -> Path | None:
    """The file of the kit's module NAME under ROOT, or of the module it is an attribute of
    (devkit.services.SERVICES: devkit/services.py); None when there is none."""
    parts = name.split(".")
    while len(parts) > 1:
        base = root.joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        parts.pop()
    return None


def closure(names: set[str], root: Path = KIT_ROOT) -> set[Path]:
    """The files of modules NAMES and of every kit module they import, in turn, with their
    packages' __init__.py (importing devkit.a.b runs devkit/__init__.py and devkit/a/__init__.py)."""
    files: set[Path] = set()
    pending = sorted(names)
    while pending:
        found = module_file(pending.pop(), root)
        if found is None or found in files:
            continue
        files.add(found)
        package = found.parent
        while package != root and package.is_relative_to(root):
            init = package / "__init__.py"
            if init.is_file() and init not in files:
                files.add(init)
                pending.extend(mentioned(init))
            package = package.parent
        pending.extend(mentioned(found))
    return files


def compile_kit() -> None:
    """Byte-compile the kit's modules into their `__pycache__` (ignored by git), so that no
    `devkit` command compiles them as it starts: Python does not write its cache where
    PYTHONDONTWRITEBYTECODE is set (many images and dev containers set it), and every command
    then compiled the 40-odd modules it imports (about 40 ms of a 0.2 s command). Only up-to-date
    files are skipped, so a `git pull` followed by setup compiles what changed. Only when this
    process's user owns the kit's directory: setup under sudo would leave root's files in the
    user's clone."""
    import compileall
    import os

    if os.stat(KIT_ROOT).st_uid != os.geteuid():
        return
    compileall.compile_dir(KIT_ROOT / PACKAGE, quiet=2)
