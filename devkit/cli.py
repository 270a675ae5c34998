"""The `devkit` command: every task of the kit, from any directory (an Invoke Program; the
console script `scripts/devkit` installs and `setup` links as ~/.local/bin/devkit).

It reads the kit's invoke.yaml and the INVOKE_DEVKIT_* variables as `invoke` in the kit's
directory does, and acts on the app the working directory is in (devkit/app.py).
"""

from __future__ import annotations

from invoke import Program

from devkit.paths import KIT_ROOT


class DevkitProgram(Program):
    def parse_collection(self) -> None:
        super().parse_collection()
        # As `invoke` does when it finds tasks.py: the kit's own invoke.yaml is project config.
        self.config.set_project_location(str(KIT_ROOT))
        self.config.load_project()


def main() -> None:
    from devkit.tasks import namespace

    DevkitProgram(name="devkit", binary="devkit", version="0.1.0", namespace=namespace()).run()
