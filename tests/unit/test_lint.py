"""The house style, checked by the suite: ruff for Python, ansible-lint (production profile)
and yamllint for roles, playbooks, inventories and compose."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run(*command: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.mark.unit
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff(command):
    result = run(str(BIN / "ruff"), *command, ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.unit
def test_yamllint():
    result = run(str(BIN / "yamllint"), "--strict", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.unit  # lint: no playbook runs
def test_ansible_lint_production_profile():
    result = run(str(BIN / "ansible-lint"))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


@pytest.mark.unit
def test_documented_commands_run_on_debian():
    """Debian and Ubuntu have `python3`, no `python`: no document tells a user to type `python`
    (was: `python tests/fleet/testhosts.py up`)."""
    import re

    tracked = run("git", "ls-files", "*.md", "*.py", "*.yml", "*.sh", "scripts/*").stdout.split()
    found = [
        f"{name}:{n}"
        for name in tracked
        if name != "tests/unit/test_lint.py"
        for n, line in enumerate((ROOT / name).read_text(errors="replace").splitlines(), 1)
        if re.search(r"(^|[\s`#(])python (tests|scripts|-m|-c|benchmarks)/?", line)
    ]
    assert found == []


@pytest.mark.unit
def test_the_controllers_image_export_is_documented_with_its_prune_task():
    readme = (ROOT / "README.md").read_text()
    assert ".devkit/images/" in readme and "devkit images.prune-export" in readme
    guide = (ROOT / "docs" / "ja" / "README.md").read_text()
    assert ".devkit/images/" in guide and "images.prune-export" in guide


@pytest.mark.unit
def test_documents_cited_are_documents_the_repository_has():
    """Code and docs cite the repository's own documents (was: an ARCHITECTURE.md it did not
    have, and the seed documents by number)."""
    import re

    tracked = run("git", "ls-files").stdout.split()
    texts = [
        n for n in tracked if n.endswith((".md", ".py", ".yml", ".yaml", ".j2", ".toml", ".sh"))
    ]
    missing, seeds = [], []
    for name in texts:
        if name == "tests/unit/test_lint.py":
            continue
        text = (ROOT / name).read_text(errors="replace")
        for cited in set(re.findall(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b", text)):
            here = (ROOT / name).parent / cited
            if not (ROOT / cited).exists() and not here.exists():
                missing.append(f"{name}: {cited}")
        if re.search(r"\bseeds? \d{3}\b", text, re.IGNORECASE):
            seeds.append(name)
    assert missing == [] and seeds == []
