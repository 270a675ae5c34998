"""provision: playbooks/site.yml on an inventory's servers, read back host by host."""

from __future__ import annotations

from dataclasses import dataclass

from devkit.errors import DevkitError, SettingsError

# The name of site.yml's play that changes the servers (after the one that checks them).
PROVISION_PLAY = "Provision servers"


@dataclass(frozen=True)
class Provisioned:
    lines: list[str]  # one per host: `host: ok=N changed=M`, or why it was not provisioned
    failure: DevkitError | None


def provision(
    inventory: str,
    limit: str | None,
    check: bool,
    vault_password_file: str | None,
    ask_vault_pass: bool,
    diff: bool = False,
    verbose: bool = False,
) -> Provisioned:
    """Apply site.yml to the inventory's `servers` (or those `limit` matches), which are known
    before anything connects; `check`: --check --diff, nothing changed; `diff`: Ansible's
    --diff (with check, what it is anyway; alone, the changes shown as they are made);
    `verbose`: Ansible's own output, not one line per task that changed or failed."""
    from devkit.inventory import (
        ansible_env,
        inventory_path,
        matched_hosts,
        no_host_matched,
        vault,
        wrong_vault,
    )
    from devkit.paths import PLAYBOOKS
    from devkit.playbook import host_causes, playbook_failed, recap_by_host, run_playbook

    path = inventory_path(inventory)
    with vault(path, vault_password_file, ask_vault_pass) as (args, env):
        tools_env = ansible_env(env)
        if not matched_hosts(path, inventory, limit or "all", tools_env, group="servers"):
            servers = matched_hosts(path, inventory, "all", tools_env, group="servers")
            raise no_host_matched(inventory, limit, servers, "servers group")
        if limit:
            args.append(f"--limit={limit}")
        if check:
            args += ["--check", "--diff"]
        elif diff:
            args.append("--diff")
        result = run_playbook(
            PLAYBOOKS / "site.yml", path, {}, args=tuple(args), local=False, env=env, check=False,
            quiet=not verbose,
        )  # fmt: skip
    if "Decryption failed" in result.output:
        raise wrong_vault(inventory)
    hosts = recap_by_host(result.output)
    causes = host_causes(result.output)
    # The first play of site.yml checks every host's settings; when one is refused, the play
    # that changes hosts never starts.
    started = f"PLAY [{PROVISION_PLAY}]" in result.output
    lines, bad = [], {}
    for host, counts in hosts.items():
        state = "UNREACHABLE" if counts["unreachable"] else "FAILED" if counts["failed"] else ""
        if state:
            bad[host] = state.lower()
            lines.append(f"{host}: {state}: {silent(causes.get(host, ''))}")
        elif not started:
            lines.append(f"{host}: not changed (another host's settings were refused)")
        else:
            lines.append(
                f"{host}: ok={counts['ok']} changed={counts['changed']}"
                + (" (check mode)" if check else "")
            )
    if result.returncode == 0 and not bad:
        return Provisioned(lines, None)
    if not bad:
        return Provisioned(
            lines, playbook_failed("site.yml", result.output.splitlines(), result.returncode)
        )
    if not started:  # refused before any host changed: bad input, exit 2 as the README says
        return Provisioned(
            lines,
            SettingsError(
                f"the inventory's settings were refused for {', '.join(bad)}; no host was changed",
                "correct what each host's line names (an inventory variable, its images, its "
                "memory), then run provision again",
            ),
        )
    listed = ", ".join(f"{host} ({state})" for host, state in bad.items())
    return Provisioned(
        lines,
        DevkitError(
            f"{len(bad)} of {len(hosts)} hosts not provisioned: {listed}",
            "fix the cause named on each host's line (an unreachable host: is it up, and does "
            "SSH answer?), then run provision again: it is idempotent, hosts done stay done",
        ),
    )


def _ansible_cfg():
    import configparser

    from devkit.paths import ANSIBLE_CFG

    config = configparser.ConfigParser(interpolation=None)
    config.read(ANSIBLE_CFG)
    return config


def keepalive_seconds() -> int:
    """How long a silent host is waited for on an open connection: ServerAliveInterval x
    ServerAliveCountMax of the kit's ansible.cfg (its ssh_args); 0 when it sets none."""
    import re

    args = _ansible_cfg().get("ssh_connection", "ssh_args", fallback="")
    interval = re.search(r"ServerAliveInterval=(\d+)", args)
    count = re.search(r"ServerAliveCountMax=(\d+)", args)
    return int(interval[1]) * int(count[1]) if interval and count else 0


def connect_seconds() -> int:
    """How long a new connection waits for the host's answer (ansible.cfg's timeout, which
    Ansible gives ssh as ConnectTimeout: the TCP connection and the SSH banner)."""
    return _ansible_cfg().getint("defaults", "timeout", fallback=10)


def silent(cause: str) -> str:
    """ssh's words for a host that stopped answering, led by what they mean: its keep-alives
    unanswered on an open connection, or (through the shared one) nothing said after "reached
    over ssh:"; or a new connection's banner that never came."""
    said = cause.rstrip()
    if "during banner exchange" in said or "Connection timed out" in said:
        return f"no answer for {connect_seconds()} s (is it up, paused, out of memory?): {cause}"
    if "not responding" in said or "Timeout, server" in said or said.endswith("over ssh:"):
        return f"no answer for {keepalive_seconds()} s (is it up, paused, out of memory?): {cause}"
    return cause
