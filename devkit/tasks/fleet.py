"""verify and provision: testinfra against a host or an inventory; the playbooks on servers."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from invoke import Exit, task

from devkit.paths import ANSIBLE_CFG, KIT_ROOT
from devkit.tasks._cli import reports_errors

# The name of site.yml's play that changes the servers (after the one that checks them).
PROVISION_PLAY = "Provision servers"
VAULT_HELP = {
    "vault_password_file": "File holding the inventory's ansible-vault password",
    "ask_vault_pass": "Ask for the inventory's ansible-vault password",
}


def _kit_path(path: str) -> Path | None:
    """A path as given (from the current directory), else relative to the kit; None if absent."""
    given = Path(path).expanduser()
    for candidate in (given,) if given.is_absolute() else (given, KIT_ROOT / given):
        if candidate.exists():
            return candidate.resolve()
    return None


def _inventory(path: str) -> Path:
    inventory = _kit_path(path)
    if inventory is None:
        raise Exit(
            f"error: no inventory at {path}\n  fix: pass --inventory inventories/<name> (see inventories/)",
            code=2,
        )
    return inventory


@contextlib.contextmanager
def _vault(
    inventory: Path, password_file: str | None, ask: bool
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """ansible-playbook's vault arguments, and the environment for the tools without them
    (ansible-inventory, testinfra). Refuses, before connecting anywhere, an encrypted
    inventory with no way to open it. A password asked for (--ask-vault-pass, or an encrypted
    inventory on a terminal) is asked once, here, and handed on in a file only this user can
    read, removed afterwards: every tool then reads the same one."""
    if ask or (
        not password_file
        and not os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
        and _encrypted(inventory)
        and sys.stdin.isatty()
    ):
        import getpass

        if not sys.stdin.isatty():
            raise Exit(
                "error: --ask-vault-pass needs a terminal to ask on\n"
                "  fix: pass --vault-password-file FILE (a file only you can read)",
                code=2,
            )
        try:
            password = getpass.getpass("Vault password: ")
        except EOFError:
            raise Exit(
                "error: no vault password was typed\n  fix: run again and type it", code=2
            ) from None
        with tempfile.TemporaryDirectory(prefix="devkit-vault.") as private:  # 0700
            path = Path(private) / "password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password + "\n")
            yield [f"--vault-password-file={path}"], {"ANSIBLE_VAULT_PASSWORD_FILE": str(path)}
        return
    yield _vault_given(inventory, password_file)


def _encrypted(inventory: Path) -> list[Path]:
    files = [inventory] if inventory.is_file() else sorted(inventory.rglob("*.yml"))
    return [f for f in files if f.read_bytes().startswith(b"$ANSIBLE_VAULT")]


def _vault_given(inventory: Path, password_file: str | None) -> tuple[list[str], dict[str, str]]:
    if password_file:
        path = _kit_path(password_file)
        if path is None or not path.is_file():
            raise Exit(
                f"error: no vault password file at {password_file}\n  fix: pass the file holding the inventory's vault password",
                code=2,
            )
        return [f"--vault-password-file={path}"], {"ANSIBLE_VAULT_PASSWORD_FILE": str(path)}
    encrypted = _encrypted(inventory)
    if encrypted and not os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"):
        raise Exit(
            f"error: {encrypted[0].relative_to(inventory.parent)} is encrypted with ansible-vault\n"
            "  fix: pass --vault-password-file FILE (or --ask-vault-pass on a terminal)",
            code=2,
        )
    return [], {}


def _wrong_vault(inventory: str) -> Exit:
    return Exit(
        f"error: the vault password given does not open {inventory}'s vault\n"
        "  fix: pass the inventory's own password (--vault-password-file FILE or --ask-vault-pass)",
        code=1,
    )


def _matched_hosts(
    inventory: Path, shown: str, pattern: str, env: dict[str, str], group: str | None = None
) -> set[str]:
    """The inventory's hosts the pattern matches (of `group`, when given), read as Ansible and
    testinfra will (ansible-inventory); `shown`: the inventory as the user named it."""
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(inventory), "--list", "--limit", pattern],
        cwd=KIT_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if "Decryption failed" in listed.stderr:
        raise _wrong_vault(shown)
    if listed.returncode != 0:
        last = (listed.stderr.strip().splitlines() or ["ansible-inventory failed"])[-1]
        raise Exit(f"error: cannot read {inventory}: {last}\n  fix: check the inventory", code=2)
    groups = json.loads(listed.stdout)
    hosts = set(groups.pop("_meta", {}).get("hostvars", {}))
    if group is not None:
        return _members(groups, group)
    return hosts.union(*(members.get("hosts", []) for members in groups.values()))


def _members(groups: dict, name: str) -> set[str]:
    """The hosts of group `name` and of its children, in ansible-inventory --list's output."""
    group = groups.get(name, {})
    found = set(group.get("hosts", []))
    for child in group.get("children", []):
        found |= _members(groups, child)
    return found


def _ansible_env(env: dict[str, str]) -> dict[str, str]:
    """The environment for the kit's Ansible tools: its config, its virtualenv first."""
    return os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        **env,
    }


def _no_host_matched(inventory: str, limit: str | None, all_hosts: set[str], what: str) -> Exit:
    listed = ", ".join(sorted(all_hosts)) or "none"
    return Exit(
        f"error: {'--limit ' + limit if limit else 'the inventory'} matches no host of "
        f"{inventory}'s {what} (its hosts: {listed})\n"
        "  fix: check --limit and the inventory's hosts",
        code=1,
    )


@task(
    help={
        "inventory": "An Ansible inventory: its `servers` group gets playbooks/site.yml",
        "limit": "Only this host (or pattern) of the inventory",
        "check": "Show what would change (--check --diff), change nothing",
        **VAULT_HELP,
    }
)
@reports_errors
def provision(
    c, inventory, limit=None, check=False, vault_password_file=None, ask_vault_pass=False
):
    """Provision servers: Docker, the images, the kit, the stack and the scheduled backup
    (playbooks/site.yml over SSH). Idempotent: a second run changes nothing."""
    from devkit.paths import PLAYBOOKS
    from devkit.playbook import host_causes, playbook_failed, recap_by_host, run_playbook

    path = _inventory(inventory)
    with _vault(path, vault_password_file, ask_vault_pass) as (args, env):
        # The hosts it will run on, known before anything connects.
        tools_env = _ansible_env(env)
        if not _matched_hosts(path, inventory, limit or "all", tools_env, group="servers"):
            servers = _matched_hosts(path, inventory, "all", tools_env, group="servers")
            raise _no_host_matched(inventory, limit, servers, "servers group")
        if limit:
            args.append(f"--limit={limit}")
        if check:
            args += ["--check", "--diff"]
        result = run_playbook(
            PLAYBOOKS / "site.yml", path, {}, args=tuple(args), local=False, env=env, check=False
        )
    if "Decryption failed" in result.output:
        raise _wrong_vault(inventory)
    hosts = recap_by_host(result.output)
    causes = host_causes(result.output)
    # The first play of site.yml checks every host's settings; when one is refused, the play
    # that changes hosts never starts.
    started = f"PLAY [{PROVISION_PLAY}]" in result.output
    bad = {}
    for host, counts in hosts.items():
        state = "UNREACHABLE" if counts["unreachable"] else "FAILED" if counts["failed"] else ""
        if state:
            bad[host] = state.lower()
            print(f"{host}: {state}: {causes.get(host, '')}")
        elif not started:
            print(f"{host}: not changed (another host's settings were refused)")
        else:
            print(
                f"{host}: ok={counts['ok']} changed={counts['changed']}"
                + (" (check mode)" if check else "")
            )
    if result.returncode == 0 and not bad:
        return
    if not bad:
        raise playbook_failed("site.yml", result.output.splitlines(), result.returncode)
    listed = ", ".join(f"{host} ({state})" for host, state in bad.items())
    if not started:
        raise Exit(
            f"error: the inventory's settings were refused for {', '.join(bad)}; no host was changed\n"
            "  fix: correct the inventory variable named on the host's line, then run provision again",
            code=1,
        )
    raise Exit(
        f"error: {len(bad)} of {len(hosts)} hosts not provisioned: {listed}\n"
        "  fix: fix the cause named on each host's line (an unreachable host: is it up, and does "
        "SSH answer?), then run provision again: it is idempotent, hosts done stay done",
        code=1,
    )


_PING = re.compile(r"^(\S+) \| (SUCCESS|CHANGED|UNREACHABLE!|FAILED!)(?::| =>) ?(.*)$")


def _unreachable(inventory: Path, hosts: set[str], env: dict[str, str]) -> dict[str, str]:
    """The hosts Ansible cannot reach (or run Python on), each with the cause in one line."""
    from devkit.playbook import plain

    pinged = subprocess.run(
        [str(Path(sys.executable).with_name("ansible")), "-i", str(inventory), ":".join(sorted(hosts)),
         "-m", "ansible.builtin.ping", "-o"],
        cwd=KIT_ROOT, env=env | {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    answered = {}
    for line in plain(pinged.stdout).splitlines():
        if m := _PING.match(line):
            answered[m[1]] = "" if m[2] in ("SUCCESS", "CHANGED") else m[3].strip()[:300]
    return {
        host: answered.get(host) or "no answer from Ansible's ping"
        for host in hosts
        if answered.get(host) != ""
    }


def _run_checks(
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


@task(
    help={
        "inventory": "An Ansible inventory: check every host of it (default: this machine)",
        "limit": "Only this host (or pattern) of the inventory",
        **VAULT_HELP,
    }
)
@reports_errors
def verify(c, inventory=None, limit=None, vault_password_file=None, ask_vault_pass=False):
    """Check a provisioned host with testinfra (tests/infra): daemon, containers healthy, ports on
    loopback, authenticated query and PING, .env.local private, the scheduled backup (servers).
    Ends with one line per host."""
    from devkit.state import resolve_app_dir

    if limit and not inventory:
        raise Exit("error: --limit needs --inventory\n  fix: add --inventory PATH", code=2)
    command = [
        sys.executable, "-m", "pytest", str(KIT_ROOT / "tests" / "infra"), "-v", "-p", "no:cacheprovider",
        "--tb=short", "--deployment=host", f"--devkit-project={c.config.devkit.project_name}",
        f"--devkit-app-dir={resolve_app_dir(c.config.devkit.app_dir)}",
    ]  # fmt: skip
    down: dict[str, str] = {}
    if not inventory:
        results = _run_checks(command, _ansible_env({}))
    else:
        path = _inventory(inventory)
        with _vault(path, vault_password_file, ask_vault_pass) as (_, vault_env):
            env = _ansible_env(vault_env)
            hosts = _matched_hosts(path, inventory, limit or "all", env)
            if not hosts:
                # testinfra would skip every check and pass: no host checked is no host proven.
                everyone = _matched_hosts(path, inventory, "all", env)
                raise _no_host_matched(inventory, limit, everyone, "hosts")
            down = _unreachable(path, hosts, env)
            up = sorted(hosts - set(down))
            targets = ",".join(f"ansible://{host}" for host in up)
            results = (
                _run_checks(
                    [*command, f"--ansible-inventory={path}", f"--hosts={targets}"], env, hosts
                )
                if up
                else {}
            )
    print()
    failed = dict(sorted(down.items()))
    for host in sorted(set(results) | set(down)):
        if host in down:
            print(f"{host}: UNREACHABLE: {down[host]}")
            continue
        counts = results[host]
        print(
            f"{host}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
        )
        if counts["failed"] or not counts["passed"]:
            failed[host] = f"{counts['failed']} check(s) failed"
    if not results and not down:
        raise Exit(
            "error: the checks did not run (see pytest's output above)\n  fix: run `invoke test --marker infra` to see why",
            code=1,
        )
    if failed:
        listed = ", ".join(
            f"{host} ({why if host not in down else 'unreachable'})" for host, why in failed.items()
        )
        raise Exit(
            f"error: {len(failed)} of {len(set(results) | set(down))} hosts not verified: {listed}\n"
            "  fix: a failed check names its cause above; an unreachable host: is it up, and does SSH answer?",
            code=1,
        )
