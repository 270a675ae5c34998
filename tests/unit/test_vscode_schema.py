"""The kit's VS Code entries against VS Code's own schemas (tests/vscode/recorded/: written out
by a running VS Code 1.100.3), so that a misspelt key fails the suite (was: "activeBegins",
which VS Code does not know: the start task only turned active once it printed its first line,
and a cold WSL start past 5 s showed "cannot be tracked")."""

import copy
import json
import subprocess

import json5
import jsonschema
import pytest

from devkit.paths import KIT_ROOT, SAMPLE_APP

pytestmark = pytest.mark.unit

RECORDED = KIT_ROOT / "tests" / "vscode" / "recorded"
# Where VS Code's own schema is open (it takes any key there), so a misspelling passes it.
OPEN_IN_VSCODE = {
    "tasks.json": {("tasks",), ("options", "cwd"), ("windows", "command"), ("windows", "args")},
    "launch.json": {("version",), ("configurations",), ("inputs",)},
}


def validator(name: str) -> jsonschema.Draft202012Validator:
    # VS Code's schemas use prefixItems (JSON Schema 2020-12), as its JSON service reads them.
    schema = json.loads((RECORDED / f"{name.removesuffix('.json')}.schema.json").read_text())
    return jsonschema.Draft202012Validator(schema)


def problems(name: str, document) -> list[str]:
    """What is wrong, as the error VS Code's JSON service would show (the deepest best match)."""
    from jsonschema.exceptions import best_match

    errors = list(validator(name).iter_errors(document))
    return [best_match(errors).message] if errors else []


def written(name: str):
    # The sample app's files are what setup writes (tests/integration/test_vscode.py).
    return json5.loads((SAMPLE_APP / ".vscode" / name).read_text())


def key_paths(value, prefix=()):
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from key_paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from key_paths(inner, (*prefix, index))


@pytest.mark.parametrize("name", ["tasks.json", "launch.json"])
def test_what_the_kit_writes_is_valid_for_vscode(name):
    assert problems(name, written(name)) == []


@pytest.mark.parametrize("name", ["tasks.json", "launch.json"])
def test_every_key_the_kit_writes_is_one_vscode_knows(name):
    """Each key misspelt in turn: VS Code's schema refuses all but those it leaves open."""
    document = written(name)
    passed = set()
    for path in key_paths(document):
        changed = copy.deepcopy(document)
        parent = changed
        for step in path[:-1]:
            parent = parent[step]
        parent[path[-1] + "_"] = parent.pop(path[-1])
        if not problems(name, changed):
            passed.add(tuple(step for step in path if not isinstance(step, int))[-2:])
    assert passed <= OPEN_IN_VSCODE[name]


def test_the_previous_activeBegins_is_refused():
    previous = subprocess.run(
        ["git", "-C", str(KIT_ROOT), "show", "1acf6f3:examples/sample_app/.vscode/tasks.json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    document = (
        json5.loads(previous.stdout)
        if previous.returncode == 0
        else written("tasks.json")  # a shallow clone: the same key put back by hand
    )
    if previous.returncode != 0:
        background = document["tasks"][0]["problemMatcher"]["background"]
        background["activeBegins"] = background.pop("activeOnStart")
    assert any("'activeBegins' was unexpected" in p for p in problems("tasks.json", document))
