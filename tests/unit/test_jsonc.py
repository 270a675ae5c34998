"""Merging the kit's entries into VS Code's JSON-with-comments files."""

import json5
import pytest

from devkit.jsonc import JsoncError, merge

pytestmark = pytest.mark.unit

KIT = [{"label": "kit", "command": "up"}]


def labels(text):
    return [t["label"] for t in json5.loads(text)["tasks"]]


def test_a_missing_file_starts_from_the_given_members():
    text = merge("", "tasks", KIT, "label", new_file={"version": "2.0.0"})
    assert json5.loads(text) == {"version": "2.0.0", "tasks": KIT}


def test_a_file_without_the_key_gets_it_last_and_keeps_its_comments():
    text = '{\n    // mine\n    "version": "2.0.0", /* trailing */\n}\n'
    merged = merge(text, "tasks", KIT, "label")
    assert merged.startswith('{\n    // mine\n    "version": "2.0.0", /* trailing */')
    assert json5.loads(merged)["tasks"] == KIT


def test_the_kit_entry_is_replaced_in_place_and_others_kept_byte_for_byte():
    user = '{"label": "a", "command": "// not a comment, \\"quoted\\""}'
    text = (
        '{"tasks": [\n  ' + user + ',\n  {"label": "kit", "command": "old"},\n  {"label": "z"},\n]}'
    )
    merged = merge(text, "tasks", KIT, "label")
    assert user in merged and '{"label": "z"}' in merged
    assert labels(merged) == ["a", "kit", "z"]
    assert json5.loads(merged)["tasks"][1] == KIT[0]
    assert merge(merged, "tasks", KIT, "label") == merged


def test_an_empty_array_with_a_comment():
    merged = merge('{"tasks": [\n    // none yet\n]}', "tasks", KIT, "label")
    assert "// none yet" in merged and labels(merged) == ["kit"]


@pytest.mark.parametrize(
    "broken",
    ['{"tasks": [ {"label": "x" ]}', '{"tasks": "nope"}', '["not", "an object"]', '{"a": 1} extra'],
)
def test_broken_files_are_refused(broken):
    with pytest.raises(JsoncError):
        merge(broken, "tasks", KIT, "label", name="tasks.json")
