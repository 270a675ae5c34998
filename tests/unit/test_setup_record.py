"""What a full setup leaves for the next one to compare (devkit/setup_record.py): the inputs'
digest follows the kit's provisioning sources and the playbook's variables, not its documents or
tests (a `git pull` that changed only those needs no playbook), and each path's fingerprint its
content, mode and kind."""

import os
import shutil

import pytest

from devkit.paths import KIT_ROOT
from devkit.setup_record import SOURCE_FILES, SOURCES, fingerprint, inputs_digest

pytestmark = pytest.mark.unit


@pytest.fixture
def kit(tmp_path):
    root = tmp_path / "kit"
    for name in ("playbooks", "roles", "compose", "vscode-templates", "devkit"):
        shutil.copytree(KIT_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in SOURCE_FILES:
        shutil.copy(KIT_ROOT / name, root / name)
    (root / "README.md").write_text("# the kit\n")
    return root


def test_the_digest_follows_the_provisioning_sources_and_the_variables_only(kit):
    assert {"playbooks", "roles", "compose"} <= set(SOURCES)
    before = inputs_digest({"stack_env": {"PGPORT": "5432"}}, kit)
    (kit / "README.md").write_text("# the kit, reworded\n")
    assert inputs_digest({"stack_env": {"PGPORT": "5432"}}, kit) == before
    assert inputs_digest({"stack_env": {"PGPORT": "5433"}}, kit) != before
    task = kit / "roles" / "stack" / "tasks" / "main.yml"
    task.write_text(task.read_text() + "\n# changed\n")
    assert inputs_digest({"stack_env": {"PGPORT": "5432"}}, kit) != before


def test_a_fingerprint_tells_content_mode_kind_and_absence(tmp_path):
    file = tmp_path / "tasks.json"
    file.write_text("{}")
    first = fingerprint(str(file))
    assert first.startswith("file ")
    os.chmod(file, 0o600)
    assert fingerprint(str(file)) != first
    os.chmod(file, 0o644)
    file.write_text("{ }")
    assert fingerprint(str(file)) != first
    assert fingerprint(str(tmp_path)).startswith("dir ")
    assert fingerprint(str(tmp_path / "gone")) == "absent"


def test_of_the_kits_code_only_what_the_playbook_can_run_counts(kit):
    """A `git pull` that changed a task's code or a check leaves the digest (the playbook
    skipped); one that changed a module a role's filter imports, a module a task runs with
    `-m`, or one these import, does not (devkit/kit_code.py finds them)."""
    variables = {"stack_env": {"PGPORT": "5432"}}
    before = inputs_digest(variables, kit)
    for module in ("tasks/db_snapshot.py", "checks/run.py", "pull/masks.py"):
        path = kit / "devkit" / module
        path.write_text(path.read_text() + "\n# changed\n")
        assert inputs_digest(variables, kit) == before, module
    # A filter's (roles/images), a task's `-m devkit.dbroles` (roles/stack), one they import
    # (devkit.settings.table, through the settings model), and the code that runs the playbook.
    for module in ("architectures.py", "dbroles.py", "settings/table.py", "playbook.py"):
        path = kit / "devkit" / module
        original = path.read_text()
        path.write_text(original + "\n# changed\n")
        assert inputs_digest(variables, kit) != before, module
        path.write_text(original)
    assert inputs_digest(variables, kit) == before
