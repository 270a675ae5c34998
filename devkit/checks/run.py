"""verify: the checks of devkit/checks run with testinfra against this machine or an inventory's
hosts, and read back per host."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devkit.errors import BadArgument, ChecksFailed, DevkitError
from devkit.paths import ENV_FILE_NAME, KIT_ROOT

CHECKS = Path(__file__).resolve().parent
CHECK_FILES = [CHECKS / "workstation.py", CHECKS / "scheduled_backup.py"]


@dataclass(frozen=True)
class Verified:
    lines: list[str]  # one per host: `host: N passed, F failed, S skipped`, or UNREACHABLE
    failure: DevkitError | None


def _run_pytest(
    command: list[str], env: dict[str, str], hosts: set[str] | None = None
) -> dict[str, dict[str, int]]:
    """Run testinfra (its output shown as it comes); per host of `hosts` (None: this machine),
    the checks passed, failed and skipped, read from its JUnit report (never from the terminal
    output, coloured or not). A check's id is `[ansible://HOST]` or `[ansible://HOST-PARAM]`."""
    import xml.etree.ElementTree as ElementTree

    with tempfile.TemporaryDirectory(prefix="devkit-verify.") as scratch:
        report = Path(scratch) / "report.xml"
        subprocess.run([*command, f"--junitxml={report}"], cwd=KIT_ROOT, env=env, check=False)
        if not report.exists():
            return {}
        tree = ElementTree.parse(report)
    counts: dict[str, dict[str, int]] = {}
    for case in tree.iter("testcase"):
        found = re.search(r"\[ansible://([^\]]+)\]$", case.get("name", ""))
        named = found[1] if found else ""
        host = next(
            (h for h in sorted(hosts or (), key=len, reverse=True)
             if named == h or named.startswith(f"{h}-")),
            "this machine",
        )  # fmt: skip
        entry = counts.setdefault(host, {"passed": 0, "failed": 0, "skipped": 0})
        outcomes = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        if "failure" in outcomes or "error" in outcomes:
            entry["failed"] += 1
        elif outcomes:
            entry["skipped"] += 1
        else:
            entry["passed"] += 1
    return counts


def verify(
    config: Mapping[str, Any],
    inventory: str | None,
    limit: str | None,
    vault_password_file: str | None,
    ask_vault_pass: bool,
) -> Verified:
    """Run the checks on this machine (its app per `config`), or on every host of `inventory`
    that `limit` matches (an unreachable host is reported, the others still checked)."""
    from devkit.app import resolve_app_dir
    from devkit.envfile import read_env_file
    from devkit.inventory import (
        ansible_env,
        inventory_path,
        matched_hosts,
        no_host_matched,
        unreachable,
        vault,
    )

    if limit and not inventory:
        raise BadArgument("--limit needs --inventory", "add --inventory PATH")
    app_dir = resolve_app_dir(str(config.get("app_dir") or ""))
    # This machine's stack is the one its app's .env.local records, unless one is set.
    project = config["project_name"] or read_env_file(app_dir / ENV_FILE_NAME).get(
        "DEVKIT_PROJECT_NAME", ""
    )
    command = [
        sys.executable, "-m", "pytest", "-p", "devkit.checks.plugin", *map(str, CHECK_FILES),
        "-v", "-p", "no:cacheprovider", "--tb=short", "--deployment=host",
        f"--devkit-project={project}", f"--devkit-app-dir={app_dir}",
    ]  # fmt: skip
    down: dict[str, str] = {}
    if not inventory:
        results = _run_pytest(command, ansible_env({}))
    else:
        path = inventory_path(inventory)
        with vault(path, vault_password_file, ask_vault_pass) as (_, vault_env):
            env = ansible_env(vault_env)
            hosts = matched_hosts(path, inventory, limit or "all", env)
            if not hosts:
                # testinfra would skip every check and pass: no host checked is no host proven.
                everyone = matched_hosts(path, inventory, "all", env)
                raise no_host_matched(inventory, limit, everyone, "hosts")
            down = unreachable(path, hosts, env)
            up = sorted(hosts - set(down))
            targets = ",".join(f"ansible://{host}" for host in up)
            results = (
                _run_pytest(
                    [*command, f"--ansible-inventory={path}", f"--hosts={targets}"], env, hosts
                )
                if up
                else {}
            )
    lines = []
    failed = dict(sorted(down.items()))
    for host in sorted(set(results) | set(down)):
        if host in down:
            lines.append(f"{host}: UNREACHABLE: {down[host]}")
            continue
        counts = results[host]
        lines.append(
            f"{host}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        )
        if counts["failed"] or not counts["passed"]:
            failed[host] = f"{counts['failed']} check(s) failed"
    if not results and not down:
        return Verified(
            lines,
            DevkitError(
                "the checks did not run (see pytest's output above)",
                "run `devkit test --marker infra` to see why",
            ),
        )
    if failed:
        listed = ", ".join(
            f"{host} ({why if host not in down else 'unreachable'})" for host, why in failed.items()
        )
        return Verified(
            lines,
            ChecksFailed(
                f"{len(failed)} of {len(set(results) | set(down))} hosts not verified: {listed}",
                "a failed check names its cause above; an unreachable host: is it up, and does SSH answer?",
            ),
        )
    return Verified(lines, None)
