"""Invoke entry point in the kit's directory (`invoke TASK`): the same tasks as the `devkit`
command (devkit/cli.py), assembled in devkit/tasks/__init__.py."""

from devkit.tasks import namespace

ns = namespace()
