"""verify and provision: testinfra against a host or an inventory; the playbooks on servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from invoke import Exit, task

from devkit.paths import ANSIBLE_CFG, KIT_ROOT
from devkit.tasks._cli import reports_errors

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


def _vault(
    inventory: Path, password_file: str | None, ask: bool, can_prompt: bool = True
) -> tuple[list[str], dict[str, str]]:
    """ansible-playbook's vault arguments, and the environment for tools without them
    (ansible-inventory under testinfra, which cannot prompt: `can_prompt` False). Refuses,
    before connecting anywhere, an encrypted inventory with no way to open it."""
    if password_file:
        path = _kit_path(password_file)
        if path is None or not path.is_file():
            raise Exit(
                f"error: no vault password file at {password_file}\n  fix: pass the file holding the inventory's vault password",
                code=2,
            )
        return [f"--vault-password-file={path}"], {"ANSIBLE_VAULT_PASSWORD_FILE": str(path)}
    if ask:
        return ["--ask-vault-pass"], {}
    files = [inventory] if inventory.is_file() else sorted(inventory.rglob("*.yml"))
    encrypted = [f for f in files if f.read_bytes().startswith(b"$ANSIBLE_VAULT")]
    if encrypted and not os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"):
        if can_prompt and sys.stdin.isatty():
            return ["--ask-vault-pass"], {}
        raise Exit(
            f"error: {encrypted[0].relative_to(inventory.parent)} is encrypted with ansible-vault\n"
            "  fix: pass --vault-password-file FILE"
            + (" (or --ask-vault-pass on a terminal)" if can_prompt else ""),
            code=2,
        )
    return [], {}


def _wrong_vault(inventory: str) -> Exit:
    return Exit(
        f"error: the vault password given does not open {inventory}'s vault\n"
        "  fix: pass the inventory's own password (--vault-password-file FILE or --ask-vault-pass)",
        code=1,
    )


def _matched_hosts(inventory: Path, shown: str, pattern: str, env: dict[str, str]) -> set[str]:
    """The inventory's hosts the pattern matches, read as testinfra will (ansible-inventory);
    `shown`: the inventory as the user named it."""
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
    return hosts.union(*(group.get("hosts", []) for group in groups.values()))


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
    from devkit.errors import CommandFailed
    from devkit.paths import PLAYBOOKS
    from devkit.playbook import recap_by_host, run_playbook

    path = _inventory(inventory)
    args, env = _vault(path, vault_password_file, ask_vault_pass)
    if limit:
        args.append(f"--limit={limit}")
    if check:
        args += ["--check", "--diff"]
    try:
        result = run_playbook(
            PLAYBOOKS / "site.yml", path, {}, args=tuple(args), local=False, env=env
        )
    except CommandFailed as exc:
        if "Decryption failed" not in exc.cause:
            raise
        raise _wrong_vault(inventory) from None
    hosts = recap_by_host(result.output)
    if not hosts:
        raise Exit(
            f"error: no host of {inventory} matched\n  fix: check --limit and the inventory's `servers` group",
            code=1,
        )
    for host, counts in hosts.items():
        print(
            f"{host}: ok={counts['ok']} changed={counts['changed']}"
            + (" (check mode)" if check else "")
        )


@task(
    help={
        "inventory": "An Ansible inventory: check every host of it (default: this machine)",
        "limit": "Only this host (or pattern) of the inventory",
        # testinfra reads the inventory itself and cannot prompt: a file, not --ask-vault-pass.
        "vault_password_file": VAULT_HELP["vault_password_file"],
    }
)
@reports_errors
def verify(c, inventory=None, limit=None, vault_password_file=None):
    """Check a provisioned host with testinfra (tests/infra): daemon, containers healthy, ports on
    loopback, authenticated query and PING, .env.local private, the scheduled backup (servers).
    Per-host results."""
    from devkit.state import resolve_app_dir

    command = [
        sys.executable, "-m", "pytest", str(KIT_ROOT / "tests" / "infra"), "-v", "-p", "no:cacheprovider",
        "--deployment=host", f"--devkit-project={c.config.devkit.project_name}",
        f"--devkit-app-dir={resolve_app_dir(c.config.devkit.app_dir)}",
    ]  # fmt: skip
    vault_env: dict[str, str] = {}
    if inventory:
        path = _inventory(inventory)
        _, vault_env = _vault(path, vault_password_file, False, can_prompt=False)
        command += [f"--ansible-inventory={path}", f"--hosts=ansible://{limit or 'all'}"]
    elif limit:
        raise Exit("error: --limit needs --inventory\n  fix: add --inventory PATH", code=2)
    # testinfra calls ansible-inventory and ansible from the kit's virtualenv, with its config.
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        **vault_env,
    }
    if inventory and not _matched_hosts(path, inventory, limit or "all", env):
        # testinfra would skip every check and pass: no host checked is no host proven.
        raise Exit(
            f"error: no host of {inventory} matched {limit or 'all'}\n  fix: check --limit and the inventory's hosts",
            code=1,
        )
    code = subprocess.run(command, cwd=KIT_ROOT, env=env, check=False).returncode
    if code:
        raise Exit(code=code)
