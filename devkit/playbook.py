"""Running ansible-playbook from the kit's virtualenv, streaming its output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.envfile import subprocess_environ
from devkit.errors import CommandFailed
from devkit.paths import ANSIBLE_CFG, KIT_ROOT

# Colours Ansible writes on a terminal (ANSIBLE_FORCE_COLOR): shown to the user, never parsed.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
)


@dataclass(frozen=True)
class PlaybookResult:
    ok: int
    changed: int
    output: str  # without colours
    returncode: int = 0


def plain(text: str) -> str:
    """Ansible's output without its colour codes."""
    return _ANSI.sub("", text)


def needs_become_password() -> bool:
    """True when not root and sudo would ask for a password."""
    if os.geteuid() == 0:
        return False
    return subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False).returncode != 0


def recap_by_host(output: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP's counts per host: {"web1": {"ok": 12, "changed": 0, ...}}."""
    hosts: dict[str, dict[str, int]] = {}
    for line in output.splitlines():
        if m := RECAP.match(line.strip()):
            counts = {key: int(value) for key, value in m.groupdict().items() if key != "host"}
            hosts[m["host"]] = counts
    return hosts


_HOST_FAILED = re.compile(r"^(?:fatal|failed): \[([^\]]+)\]")


def host_causes(output: str) -> dict[str, str]:
    """Per host, the cause of its last failure (a failed task, or UNREACHABLE): what its own
    `fatal: [HOST]` record says, the indented lines under it. Ansible 2.19 prints a failure's
    `[ERROR]: Task failed: ...` summary before the host's record, so the summary after one host's
    record is the next host's (was: each host's line named the next one's cause)."""
    lines = output.splitlines()
    causes = {}
    for start, line in enumerate(lines):
        if m := _HOST_FAILED.match(line):
            end = next(
                (i for i in range(start + 1, len(lines)) if lines[i][:1] not in ("", " ")),
                len(lines),
            )
            causes[m[1]] = failure_cause(lines[start:end])
    return causes


def parse_recap(output: str) -> tuple[int, int]:
    """Sum of ok= and changed= over the PLAY RECAP lines."""
    hosts = recap_by_host(output).values()
    return sum(h["ok"] for h in hosts), sum(h["changed"] for h in hosts)


# Ansible's wrapping of an exception a filter of the kit raised: the kit's own words follow.
_FILTER_FAILED = re.compile(r"^.*The filter plugin '[\w.]+' failed: ")


def failure_cause(lines: list[str]) -> str:
    """The most telling line of Ansible's last failure: its stderr, an error line of its stdout
    (debootstrap's `E: ...`), or its msg, else the error line."""
    return _FILTER_FAILED.sub("", _failure_cause(lines))


def _failure_cause(lines: list[str]) -> str:
    starts = [
        i for i, line in enumerate(lines) if line.startswith(("fatal:", "failed:", "[ERROR]"))
    ]
    if not starts:
        return ""
    first = starts[-1]
    block = lines[first : first + 400]
    for key in ("stderr:", "stdout:", "msg:"):
        for i, line in enumerate(block):
            value = line.strip().removeprefix(key).strip()
            if line.strip().startswith(key) and value not in ("", "''"):
                # The YAML callback folds a long value over more-indented lines, or writes a
                # literal block (|-) holding a command's whole output.
                indent = len(line) - len(line.lstrip())
                more_lines = []
                for more in block[i + 1 :]:
                    if more.strip() and len(more) - len(more.lstrip()) <= indent:
                        break
                    more_lines.append(more.strip())
                if value.startswith("|"):
                    said = [m for m in more_lines if m]
                    errors = [
                        m
                        for m in said
                        if "ERROR" in m or "error:" in m.lower() or m.startswith("E: ")
                    ]
                    if key == "stdout:" and not errors:
                        break  # a command's output without an error line says nothing
                    return (errors or said or [value])[-1].removeprefix(":stderr:").strip()[:500]
                if key == "stdout:":
                    break
                value = " ".join([value, *(m for m in more_lines[:40] if m)])
                if value.startswith("'"):  # YAML single quotes: '' stands for '
                    value = value.strip("'").replace("''", "'")
                return value.strip("'\"")[:500]
    return lines[first].strip()[:500]


def failure_fix(lines: list[str]) -> str:
    """The fix the kit's own code gave in Ansible's last failure (its `  fix: ...` line under
    `error: ...`, as a module of the kit that a role runs prints it), else ""."""
    starts = [i for i, line in enumerate(lines) if line.startswith(("fatal:", "failed:"))]
    for line in lines[starts[-1] : starts[-1] + 400] if starts else ():
        if line.strip().startswith("fix: "):
            return line.strip().removeprefix("fix: ")[:500]
    return ""


def playbook_failed(name: str, lines: list[str], returncode: int) -> CommandFailed:
    """The error for a failed ansible-playbook run: its last failure's cause, and the fix."""
    return CommandFailed(
        f"ansible-playbook {name} failed: "
        f"{failure_cause(lines).removeprefix('error: ') or f'exit code {returncode}'}",
        failure_fix(lines)
        or "read the failed task above; fix its cause and run the command again (it is idempotent)",
    )


_TASK = re.compile(r"^TASK \[(?:[\w.-]+ : )?(.*?)\] \**$")
_RESULT = re.compile(r"^(changed|fatal|failed): \[([^\]]+)\]")
# A debug task's `msg: 'warning: …'`, which the YAML callback folds over more-indented lines.
_WARNING = re.compile(r"^( *)msg: ('?)(warning: .*)$")


class Quiet:
    """Ansible's output as one line per task that changed or failed something, naming the
    task and its hosts (`changed: Install the engine (web1, web2)`), plus the `warning:` lines
    the kit's checks print: `provision`'s default on a terminal and on a pipe alike (the same
    plain lines feed it); the per-host result lines come after, from the recap. `--verbose`
    shows Ansible's own output instead."""

    def __init__(self, write) -> None:
        self.write = write
        self.task = ""
        self.hosts: dict[str, list[str]] = {}
        self.warning: list[str] = []  # a warning's lines so far
        self.warning_indent = 0

    def line(self, text: str) -> None:
        if self.warning:
            if text.strip() and len(text) - len(text.lstrip(" ")) > self.warning_indent:
                self.warning.append(text.strip())
                return
            self._say_warning()
        task = _TASK.match(text)
        if task or text.startswith("PLAY "):
            self.flush()
            self.task = task[1] if task else ""
        elif m := _RESULT.match(text):
            state = (
                "unreachable" if "UNREACHABLE!" in text else "failed" if m[1] == "fatal" else m[1]
            )
            self.hosts.setdefault(state, [])
            if m[2] not in self.hosts[state]:
                self.hosts[state].append(m[2])
        elif m := _WARNING.match(text):
            self.warning, self.warning_indent = [m[2] + m[3]], len(m[1])

    def _say_warning(self) -> None:
        said = " ".join(self.warning)
        if said.startswith("'"):  # YAML's single quotes, where '' stands for '
            said = said[1:].removesuffix("'").replace("''", "'")
        self.write(said + "\n")
        self.warning = []

    def flush(self) -> None:
        if self.warning:
            self._say_warning()
        for state, hosts in self.hosts.items():
            self.write(f"{state}: {self.task} ({', '.join(hosts)})\n")
        self.hosts = {}


def run_playbook(
    playbook: Path,
    inventory: Path,
    extra_vars: dict[str, Any],
    *,
    echo: bool = True,
    quiet: bool = False,
    args: tuple[str, ...] = (),
    local: bool = True,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> PlaybookResult:
    """Run `ansible-playbook`; the variables go through a 0600 file (they carry secrets).
    `local`: the play becomes root on this machine (sudo's password is asked when needed).
    `check`: a failed run raises CommandFailed; else the result carries its return code.
    `quiet`: one line per task that changed or failed (Quiet) instead of Ansible's output.
    It runs as `.venv/bin/python -m devkit.ansible_playbook`: the filters' modules imported first."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="devkit-vars.") as vars_file:
        json.dump(extra_vars, vars_file)
        vars_file.flush()
        command = [
            sys.executable,
            "-m",
            "devkit.ansible_playbook",
            "-i",
            str(inventory),
            str(playbook),
            "-e",
            f"@{vars_file.name}",
            *args,
        ]
        if local and needs_become_password():
            command.append("--ask-become-pass")
        env = {**subprocess_environ(), "ANSIBLE_CONFIG": str(ANSIBLE_CFG), **(env or {})}
        if echo and sys.stdout.isatty():
            env["ANSIBLE_FORCE_COLOR"] = "1"
        process = subprocess.Popen(
            command,
            cwd=KIT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines = []
        assert process.stdout is not None
        view = Quiet(lambda text: (sys.stdout.write(text), sys.stdout.flush())) if quiet else None
        for line in process.stdout:
            lines.append(plain(line))
            if view:
                view.line(lines[-1].rstrip("\n"))
            elif echo:
                sys.stdout.write(line)
                sys.stdout.flush()
        process.wait()
        if view:
            view.flush()
    output = "".join(lines)
    if process.returncode != 0 and check:
        raise playbook_failed(playbook.name, lines, process.returncode)
    ok, changed = parse_recap(output)
    return PlaybookResult(ok=ok, changed=changed, output=output, returncode=process.returncode)
