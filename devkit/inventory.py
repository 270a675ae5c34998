"""Ansible inventories as provision and verify use them: the path, the vault password (asked
once, handed on in a private file), the hosts a pattern matches, and which hosts answer."""

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

from devkit.errors import BadArgument, DevkitError
from devkit.paths import ANSIBLE_CFG, KIT_ROOT


def kit_path(path: str) -> Path | None:
    """A path as given (from the current directory), else relative to the kit; None if absent."""
    given = Path(path).expanduser()
    for candidate in (given,) if given.is_absolute() else (given, KIT_ROOT / given):
        if candidate.exists():
            return candidate.resolve()
    return None


def inventory_path(path: str) -> Path:
    inventory = kit_path(path)
    if inventory is None:
        raise BadArgument(
            f"no inventory at {path}", "pass --inventory inventories/<name> (see inventories/)"
        )
    return inventory


@contextlib.contextmanager
def vault(
    inventory: Path, password_file: str | None, ask: bool
) -> Iterator[tuple[list[str], dict[str, str]]]:
    """ansible-playbook's vault arguments, and the environment for the tools without them
    (ansible-inventory, testinfra). Refuses, before connecting anywhere, an encrypted
    inventory with no way to open it, on a terminal too (was: a `Vault password:` prompt that
    a run left on a terminal waited at for ever; the README says refused). A password asked
    for (--ask-vault-pass) is asked once, here, and handed on in a file only this user can
    read, removed afterwards: every tool then reads the same one."""
    if ask:
        import getpass

        if not sys.stdin.isatty():
            raise BadArgument(
                "--ask-vault-pass needs a terminal to ask on",
                "pass --vault-password-file FILE (a file only you can read)",
            )
        try:
            password = getpass.getpass("Vault password: ")
        except EOFError:
            raise BadArgument("no vault password was typed", "run again and type it") from None
        with tempfile.TemporaryDirectory(prefix="devkit-vault.") as private:  # 0700
            path = Path(private) / "password"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password + "\n")
            yield [f"--vault-password-file={path}"], {"ANSIBLE_VAULT_PASSWORD_FILE": str(path)}
        return
    yield _vault_given(inventory, password_file)


def encrypted_files(inventory: Path) -> list[Path]:
    files = [inventory] if inventory.is_file() else sorted(inventory.rglob("*.yml"))
    return [f for f in files if f.read_bytes().startswith(b"$ANSIBLE_VAULT")]


def _vault_given(inventory: Path, password_file: str | None) -> tuple[list[str], dict[str, str]]:
    if password_file:
        path = kit_path(password_file)
        if path is None or not path.is_file():
            raise BadArgument(
                f"no vault password file at {password_file}",
                "pass the file holding the inventory's vault password",
            )
        return [f"--vault-password-file={path}"], {"ANSIBLE_VAULT_PASSWORD_FILE": str(path)}
    encrypted = encrypted_files(inventory)
    if encrypted and not os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"):
        raise BadArgument(
            f"{encrypted[0].relative_to(inventory.parent)} is encrypted with ansible-vault",
            "pass --vault-password-file FILE (or --ask-vault-pass on a terminal)",
        )
    return [], {}


def wrong_vault(inventory: str) -> DevkitError:
    return DevkitError(
        f"the vault password given does not open {inventory}'s vault",
        "pass the inventory's own password (--vault-password-file FILE or --ask-vault-pass)",
    )


def listed(inventory: Path, shown: str, env: dict[str, str], pattern: str = "all") -> dict:
    """ansible-inventory --list of the hosts PATTERN matches: the groups, and `_meta`'s variables
    of each host, read as Ansible and testinfra will; `shown`: the inventory as the user named
    it."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(inventory), "--list", "--limit", pattern],
        cwd=KIT_ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if "Decryption failed" in done.stderr:
        raise wrong_vault(shown)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["ansible-inventory failed"])[-1]
        raise BadArgument(f"cannot read {inventory}: {last}", "check the inventory")
    return json.loads(done.stdout)


def matched_hosts(
    inventory: Path, shown: str, pattern: str, env: dict[str, str], group: str | None = None
) -> set[str]:
    """The inventory's hosts the pattern matches (of `group`, when given)."""
    groups = listed(inventory, shown, env, pattern)
    hosts = set(groups.pop("_meta", {}).get("hostvars", {}))
    if group is not None:
        return members(groups, group)
    return hosts.union(*(members.get("hosts", []) for members in groups.values()))


def members(groups: dict, name: str) -> set[str]:
    """The hosts of group `name` and of its children, in ansible-inventory --list's output."""
    group = groups.get(name, {})
    found = set(group.get("hosts", []))
    for child in group.get("children", []):
        found |= members(groups, child)
    return found


def ansible_env(env: dict[str, str]) -> dict[str, str]:
    """The environment for the kit's Ansible tools: its config, its virtualenv first."""
    return os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        **env,
    }


def no_host_matched(
    inventory: str, limit: str | None, all_hosts: set[str], what: str
) -> DevkitError:
    listed = ", ".join(sorted(all_hosts)) or "none"
    return DevkitError(
        f"{'--limit ' + limit if limit else 'the inventory'} matches no host of "
        f"{inventory}'s {what} (its hosts: {listed})",
        "check --limit and the inventory's hosts",
    )


_PING = re.compile(r"^(\S+) \| (SUCCESS|CHANGED|UNREACHABLE!|FAILED!)(?::| =>) ?(.*)$")


def unreachable(inventory: Path, hosts: set[str], env: dict[str, str]) -> dict[str, str]:
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
