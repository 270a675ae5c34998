"""`ansible-playbook`, with the kit's rules that the playbooks' filters call imported first
(devkit/playbook.py runs every playbook through it).

The filters of site.yml and of the roles are the kit's own rules (devkit.settings, devkit.dotenv,
...). Ansible runs each task of each host in a process forked from its main one, and loads the
filter plugins in that process anew: every task imported pydantic and the settings model again,
a third of the controller's CPU in a provision run (py-spy, 2026-12-02). Imported here once,
before the first fork, they are already in every task's process.

    .venv/bin/python -m devkit.ansible_playbook ARGS   # as .venv/bin/ansible-playbook ARGS
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from devkit.paths import KIT_ROOT


def filter_imports(root: Path = KIT_ROOT) -> list[str]:
    """The kit's modules that the playbooks' and roles' filter plugins import."""
    from devkit.kit_code import imported

    plugins = sorted(root.glob("playbooks/filter_plugins/*.py"))
    plugins += sorted(root.glob("roles/*/filter_plugins/*.py"))
    return sorted({name for plugin in plugins for name in imported(plugin)})


def main() -> None:
    for module in filter_imports():
        importlib.import_module(module)
    from ansible.cli.playbook import main as ansible_playbook

    sys.argv[0] = "ansible-playbook"
    ansible_playbook()


if __name__ == "__main__":
    main()
