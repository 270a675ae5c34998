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
    serial: str | None = None,
) -> Provisioned:
    """Apply site.yml to the inventory's `servers` (or those `limit` matches), which are known
    before anything connects; `check`: --check --diff, nothing changed; `diff`: Ansible's
    --diff (with check, what it is anyway; alone, the changes shown as they are made);
    `verbose`: Ansible's own output, not one line per task that changed or failed; `serial`:
    so many hosts at a time (`2`, `25%`), each batch's stack answering before the next starts,
    and a failed batch stops the run (a rolling upgrade)."""
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

    extra_vars = {"devkit_serial": serial_value(serial)} if serial else {}
    path = inventory_path(inventory)
    with vault(path, vault_password_file, ask_vault_pass) as (args, env):
        tools_env = ansible_env(env)
        matched = matched_hosts(path, inventory, limit or "all", tools_env, group="servers")
        if not matched:
            servers = matched_hosts(path, inventory, "all", tools_env, group="servers")
            raise no_host_matched(inventory, limit, servers, "servers group")
        if limit:
            args.append(f"--limit={limit}")
        if check:
            args += ["--check", "--diff"]
        elif diff:
            args.append("--diff")
        result = run_playbook(
            PLAYBOOKS / "site.yml", path, extra_vars, args=tuple(args), local=False, env=env,
            check=False,
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
    # --serial: the servers of the batches after a failed one were never reached.
    for host in sorted(set(matched) - set(hosts)) if started else ():
        bad[host] = "not reached"
        lines.append(f"{host}: not changed (a batch before it failed: --serial stops there)")
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


def serial_value(serial: str) -> int | str:
    """--serial's value as Ansible's `serial` takes it: a number of hosts (1 or more) or a share
    of them (1% to 100%)."""
    import re

    from devkit.errors import BadArgument

    found = re.fullmatch(r"\s*([0-9]+)\s*(%?)\s*", serial)
    if not found or not 1 <= int(found[1]) <= (100 if found[2] else 10_000):
        raise BadArgument(
            f"--serial {serial!r} is not a number of hosts nor a share of them",
            "give how many servers at a time, e.g. --serial 1 or --serial 25%",
        )
    return f"{int(found[1])}%" if found[2] else int(found[1])


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
