"""Which of the kit's modules a part of it can run (devkit/kit_code.py), read from the files:
imports anywhere in a module, `from devkit import a, b`, dotted names in any text (a task's
`-m devkit.x`, a probe's "devkit.x:function"), packages' __init__, and nothing else."""

import pytest

from devkit.kit_code import closure, imported, mentioned, module_file

pytestmark = pytest.mark.unit


def test_the_closure_follows_imports_names_and_packages_only(tmp_path):
    package = tmp_path / "devkit"
    (package / "c").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from devkit import b, lone as alias\n\ndef f():\n    import devkit.c.d\n",
        "b.py": 'PROBE = "devkit.f:probe"\n',
        "c/__init__.py": "",
        "c/d.py": "from devkit.errors import DevkitError\n",
        "errors.py": "",
        "lone.py": "",
        "f.py": "",
        "unused.py": "import devkit.a\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    found = {str(path.relative_to(package)) for path in closure({"devkit.a"}, tmp_path)}
    assert found == set(files) - {"unused.py"}
    assert imported(package / "a.py") == {"devkit", "devkit.b", "devkit.lone", "devkit.c.d"}
    task = tmp_path / "main.yml"
    task.write_text('argv: [python, -m, devkit.b]\nlabels: {io.devkit.inputs: "x"}\n')
    assert mentioned(task) == {"devkit.b", "devkit.inputs"}
    assert closure(mentioned(task), tmp_path) == {package / "b.py", package / "__init__.py",
                                                  package / "f.py"}  # fmt: skip
    # An attribute's dotted name is its module's; a name that is no module, nothing.
    assert module_file("devkit.b.PROBE", tmp_path) == package / "b.py"
    assert module_file("devkit.inputs", tmp_path) is None


def test_setup_compiles_every_module_of_the_kit_for_python_to_load():
    """compile_kit leaves each module's cache up to date, as Python's own import checks it
    (the source's mtime and size in the .pyc's header): with PYTHONDONTWRITEBYTECODE set, as on
    this machine, nothing else writes them."""
    import importlib.util
    import os
    import struct

    from devkit.kit_code import compile_kit
    from devkit.paths import KIT_ROOT

    compile_kit()
    stale = []
    for source in sorted((KIT_ROOT / "devkit").rglob("*.py")):
        cache = importlib.util.cache_from_source(str(source))
        if not os.path.exists(cache):
            stale.append(source.name)
            continue
        with open(cache, "rb") as f:
            header = f.read(16)
        flags, mtime, size = struct.unpack("<III", header[4:16])
        st = source.stat()
        if flags != 0 or mtime != int(st.st_mtime) & 0xFFFFFFFF or size != st.st_size & 0xFFFFFFFF:
            stale.append(source.name)
    assert stale == []
