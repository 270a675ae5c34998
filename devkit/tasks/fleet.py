"""verify and provision: testinfra against a host or an inventory; the playbooks on servers."""

from __future__ import annotations

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


def _inventory(path: str) -> Path:
    inventory = Path(path).expanduser()
    if not inventory.is_absolute() and not inventory.exists():
        inventory = KIT_ROOT / inventory
    if not inventory.exists():
        raise Exit(
            f"error: no inventory at {path}\n  fix: pass --inventory inventories/<name> (see inventories/)",
            code=2,
        )
    return inventory.resolve()


def _vault(
    inventory: Path, password_file: str | None, ask: bool
) -> tuple[list[str], dict[str, str]]:
    """ansible-playbook's vault arguments, and the environment for tools without them
    (ansible-inventory under testinfra). Refuses, before connecting anywhere, an encrypted
    inventory with no way to open it."""
    if password_file:
        path = Path(password_file).expanduser()
        if not path.is_absolute() and not path.exists():
            path = KIT_ROOT / path
        if not path.is_file():
            raise Exit(
                f"error: no vault password file at {password_file}\n  fix: pass the file holding the inventory's vault password",
                code=2,
            )
        return [f"--vault-password-file={path.resolve()}"], {
            "ANSIBLE_VAULT_PASSWORD_FILE": str(path.resolve())
        }
    if ask:
        return ["--ask-vault-pass"], {}
    files = [inventory] if inventory.is_file() else sorted(inventory.rglob("*.yml"))
    encrypted = [f for f in files if f.read_bytes().startswith(b"$ANSIBLE_VAULT")]
    if encrypted and not os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE"):
        if sys.stdin.isatty():
            return ["--ask-vault-pass"], {}
        raise Exit(
            f"error: {encrypted[0].relative_to(inventory.parent)} is encrypted with ansible-vault\n"
            "  fix: pass --vault-password-file FILE (or --ask-vault-pass on a terminal)",
            code=2,
        )
    return [], {}


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
        raise CommandFailed(
            f"the vault password given does not open {inventory}'s vault",
            "pass the inventory's own password (--vault-password-file FILE or --ask-vault-pass)",
        ) from None
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
        **VAULT_HELP,
    }
)
@reports_errors
def verify(c, inventory=None, limit=None, vault_password_file=None, ask_vault_pass=False):
    """Check a provisioned host with testinfra (tests/infra): daemon, containers healthy, ports on
    loopback, authenticated query and PING, .env.local private. Per-host results."""
    from devkit.state import resolve_app_dir

    command = [
        sys.executable, "-m", "pytest", str(KIT_ROOT / "tests" / "infra"), "-v", "-p", "no:cacheprovider",
        "--deployment=host", f"--devkit-project={c.config.devkit.project_name}",
        f"--devkit-app-dir={resolve_app_dir(c.config.devkit.app_dir)}",
    ]  # fmt: skip
    vault_env: dict[str, str] = {}
    if inventory:
        path = _inventory(inventory)
        _, vault_env = _vault(path, vault_password_file, False)
        if ask_vault_pass:
            raise Exit(
                "error: verify cannot ask for the vault password\n  fix: pass --vault-password-file FILE",
                code=2,
            )
        command += [f"--ansible-inventory={path}", f"--hosts=ansible://{limit or 'all'}"]
    elif limit:
        raise Exit("error: --limit needs --inventory\n  fix: add --inventory PATH", code=2)
    # testinfra calls ansible-inventory and ansible from the kit's virtualenv, with its config.
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        **vault_env,
    }
    code = subprocess.run(command, cwd=KIT_ROOT, env=env, check=False).returncode
    if code:
        raise Exit(code=code)
