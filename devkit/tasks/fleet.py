"""verify and provision: the kit's checks against a host or an inventory; the playbooks on
servers (devkit/checks/run.py, devkit/provisioning.py, devkit/inventory.py)."""

from __future__ import annotations

from invoke import task

from devkit.tasks._cli import reports_errors

VAULT_HELP = {
    "vault_password_file": "File holding the inventory's ansible-vault password",
    "ask_vault_pass": "Ask for the inventory's ansible-vault password",
}


@task(
    help={
        "inventory": "An Ansible inventory: its `servers` group gets playbooks/site.yml",
        "limit": "Only this host (or pattern) of the inventory",
        "check": "Show what would change (--check --diff), change nothing",
        "diff": "Show each file's changes (Ansible's --diff; --check shows them anyway)",
        "verbose": "Ansible's whole output (default: one line per task that changed or failed)",
        "serial": "A rolling upgrade: N servers (or N%) at a time, each batch answering before the next",
        **VAULT_HELP,
    }
)
@reports_errors
def provision(
    c,
    inventory,
    limit=None,
    check=False,
    vault_password_file=None,
    ask_vault_pass=False,
    diff=False,
    verbose=False,
    serial=None,
):
    """Provision servers over SSH: Docker, images, the kit, the stack, the scheduled backup.

    playbooks/site.yml through the inventory. Idempotent: a second run changes nothing."""
    from devkit.provisioning import provision as apply

    result = apply(
        inventory, limit, check, vault_password_file, ask_vault_pass, diff, verbose, serial
    )
    for line in result.lines:
        print(line)
    if result.failure:
        raise result.failure


@task(
    help={
        "inventory": "An Ansible inventory: check every host of it (default: this machine)",
        "limit": "Only this host (or pattern) of the inventory",
        **VAULT_HELP,
    }
)
@reports_errors
def verify(c, inventory=None, limit=None, vault_password_file=None, ask_vault_pass=False):
    """Check this machine or an inventory's hosts with testinfra; one line per host.

    devkit/checks: daemon, containers healthy, ports on loopback, authenticated query and PING,
    .env.local private, the scheduled backup (servers)."""
    from devkit.checks.run import verify as check

    result = check(c.config.devkit, inventory, limit, vault_password_file, ask_vault_pass)
    print()
    for line in result.lines:
        print(line)
    if result.failure:
        raise result.failure
