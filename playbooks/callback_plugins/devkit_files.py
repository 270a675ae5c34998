"""The files a playbook run wrote or looked at, by their paths (each task result's, or its
arguments', `dest` or `path`): `devkit setup` records them after a full run (devkit/setup_record.py), and a later setup
whose inputs did not change skips the playbook only while every one is as that run left it.

Enabled in ansible.cfg; it writes only when DEVKIT_FILES_RECORD names the file to write."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: devkit_files
type: aggregate
short_description: the paths a run's tasks wrote or read, for devkit setup's record
description: Writes them as a JSON list to the file DEVKIT_FILES_RECORD names.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "devkit_files"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._paths: set[str] = set()

    def _collect(self, result: dict) -> None:
        for key in ("dest", "path"):
            value = result.get(key)
            if isinstance(value, str) and value.startswith("/"):
                self._paths.add(value)
        for item in result.get("results") or []:
            if isinstance(item, dict):
                self._collect(item)

    def v2_runner_on_ok(self, result):
        self._collect(result._result)
        # lineinfile and blockinfile name their file in their arguments only.
        self._collect(getattr(result, "_task_fields", {}).get("args") or {})

    def v2_playbook_on_stats(self, stats):
        target = os.environ.get("DEVKIT_FILES_RECORD")
        if target:
            with open(target, "w", encoding="utf-8") as out:
                json.dump(sorted(self._paths), out)
