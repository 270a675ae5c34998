"""The kit's modules import one another as a tree: no cycle, counting the imports inside
functions too (they are there for start-up speed, and would hide a cycle from Python until the
function runs). And a module over 400 lines says at its top why it is one module."""

import ast
from pathlib import Path

import pytest

from devkit.paths import KIT_ROOT

pytestmark = pytest.mark.unit

PACKAGE = KIT_ROOT / "devkit"


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(KIT_ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The kit's modules NAME imports anywhere in it. `from pkg import sub` imports the module
    pkg.sub when there is one (Python runs pkg's __init__ first, before pkg.sub: no edge back)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges = set()

    def module_of(dotted: str) -> str:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [module_of(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else module_of(base)
                for alias in node.names
            ]
        else:
            continue
        edges |= {target for target in targets if target and target != name}
    return edges


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_kits_imports_have_no_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_walk_sees_a_cycle_hidden_in_a_function(tmp_path):
    """The test above can fail: an import inside a function is an edge, and a cycle through it
    is found (snapshot recovery asking lifecycle.up in a function would be one: up calls the
    recovery)."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    modules = _modules()
    probe = tmp_path / "snapshot_recovery.py"
    probe.write_text("def f():\n    from devkit.lifecycle import up\n")
    assert _imports("devkit.snapshot_recovery", probe, modules) == {"devkit.lifecycle"}
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    graph["devkit.snapshot_recovery"] |= {"devkit.lifecycle"}
    assert any("devkit.snapshot_recovery" in cycle for cycle in _cycles(graph))


LONG = 400


def test_a_long_module_says_why_it_is_one():
    long = {
        name: path for name, path in _modules().items() if len(path.read_text().splitlines()) > LONG
    }
    unexplained = [
        name
        for name, path in long.items()
        if "One module because" not in (ast.get_docstring(ast.parse(path.read_text())) or "")
    ]
    assert unexplained == []
