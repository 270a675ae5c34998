"""`devkit db.pull ENV` on the laptop: the masked copy fetched from the server's kit over SSH
(remote.py, source.py) into the backup directory, restored like db.restore (kept first, one
transaction, across migration versions: devkit/commands/restore.py), kept as the snapshot
`pulled-ENV` that any branch can start from, and recorded (where, when, which rules) for
status and doctor."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devkit.errors import BadArgument, DevkitError
from devkit.paths import KIT_ROOT, read_record, remove_kit_file, state_dir, write_record
from devkit.pull.remote import Host


@dataclass
class Pulled:
    host: str
    inventory: str
    file: Path
    result: Any  # devkit.commands.restore.RestoreResult
    snapshot: str
    replaced: bool
    rules: str  # the rules' digest


def record_path(project: str) -> Path:
    return state_dir() / "pulls" / f"{project}.json"


def last_pull(project: str) -> dict | None:
    """Where the stack's data last came from (db.pull's record), None when never pulled."""
    return read_record(record_path(project)) or None


def where_from(env: str) -> tuple[str, str | None]:
    """ENV as an inventory (inventories/ENV or a path), or a host of one of the kit's
    inventories: (the inventory, the host or None)."""
    from devkit.inventory import kit_path

    for candidate in (env, f"inventories/{env}"):
        path = kit_path(candidate)
        if path is not None and (path.is_dir() or path.suffix in (".yml", ".yaml", ".ini")):
            return candidate, None
    for hosts_file in sorted((KIT_ROOT / "inventories").glob("*/hosts.yml")):
        if re.search(rf"^\s+{re.escape(env)}:", hosts_file.read_text(), re.MULTILINE):
            return f"inventories/{hosts_file.parent.name}", env
    known = sorted(p.name for p in (KIT_ROOT / "inventories").iterdir() if p.is_dir())
    raise BadArgument(
        f"no inventory or host named {env}",
        f"name an inventory ({', '.join(known)}) or one of its hosts",
    )


def snapshot_name(inventory: str, host: str, several: bool) -> str:
    name = Path(inventory).name + (f"-{host}" if several else "")
    return ("pulled-" + re.sub(r"[^a-z0-9]+", "-", name.lower())).strip("-")[:40]


def unique_index(cause: str) -> str | None:
    """The unique index a load's error names: refused per row, or when the index was built
    after the table's rows (devkit/backup/load.py)."""
    found = re.search(
        r'(?:violates unique constraint|could not create unique index) "([^"]+)"', cause
    )
    return found[1] if found else None


def _not_unique(stack, rules, exc: DevkitError) -> DevkitError | None:
    """A load refused for a unique index (masked values that collide) as the rule to change."""
    index = unique_index(exc.cause)
    if index is None:
        return None
    from devkit.backup.session import connect
    from devkit.backup.target import stack_target

    conn = connect(stack_target(stack.values))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT n.nspname || '.' || c.relname, a.attname FROM pg_index i "
                "JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey) "
                "WHERE x.relname = %s",
                (index,),
            )
            columns = cur.fetchall()
    finally:
        conn.close()
    masked = [
        f"{table}.{column} ({rules.tables[table][column].describe()}, {rules.where(table, column)})"
        for table, column in columns
        if column in rules.tables.get(table, {}) and rules.tables[table][column].kind != "keep"
    ]
    if not masked:
        return None
    return DevkitError(
        f"the masked values of {', '.join(masked)} are not unique ({index}); nothing was changed",
        "give it a rule whose values stay distinct: hash, or {fake: email}",
    )


def _new_file(directory: Path, name: str):
    """The partial file a pull's copy is written to, and the previous pull's files (of NAME)."""
    from devkit.backup.files import new_backup_file, write_failed

    try:
        directory.mkdir(parents=True, exist_ok=True)
        earlier = sorted(directory.glob(f"{name}_*.backup.gz"))
        return new_backup_file(directory, datetime.now(UTC), ".backup.gz", prefix=name), earlier
    except OSError as exc:
        raise write_failed(directory, exc) from None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


def pull(
    config: Mapping[str, Any],
    env: str,
    host_name: str | None,
    vault_password_file: str | None,
    ask_vault_pass: bool,
    say: Callable[[str], None] = print,
    ask: Callable[[str], None] = lambda question: None,
) -> Pulled:
    """Pull (see the module); ASK is given the question before anything is fetched or changed
    (it raises to stop)."""
    from devkit import snapshots
    from devkit.backup.arriving import following
    from devkit.backup.files import backup_dir, publish
    from devkit.backup.target import check_local, resolve_target
    from devkit.commands import restore
    from devkit.envfile import load_stack
    from devkit.inventory import ansible_env, inventory_path, vault
    from devkit.pull import remote
    from devkit.pull.rules import load
    from devkit.safety_net import kept_around

    stack = load_stack(config)
    target = resolve_target(config)
    check_local(stack, target, "db.pull")
    rules = load(stack.app_dir)
    inventory, named = where_from(env)
    host_name = host_name or named
    path = inventory_path(inventory)
    stamp = remote.stamp(path)
    directory = backup_dir(config)
    made_directory = not directory.exists()
    # The server is reached while ansible-inventory reads the inventory (Ansible's start costs
    # as long as ssh's connection and the server's kit starting), by the command line the last
    # pull ran, when it asked for the same server and the inventory's files are as they were:
    # nothing is sent to it before the inventory's answer gives the same command line.
    previous = last_pull(stack.project) or {}
    guess = previous.get("ssh")
    guessed = str(previous.get("snapshot"))  # its file's name too
    same = [previous.get(k) for k in ("inventory", "asked", "stamp")] == [
        inventory,
        host_name,
        stamp,
    ]
    if not (same and remote.valid_command(guess) and re.fullmatch(r"pulled-[a-z0-9-]+", guessed)):
        guess = None
    # The server's bytes go straight to the file, and the restore loads it as it arrives (a
    # reader that waits at its end while ssh runs: backup/arriving.following), so the server's
    # reading and the laptop's loading overlap; the SHA-256 at its end is checked before COMMIT.
    errors: list[bytes] = []
    made = process = None
    try:
        if guess is not None:
            made, earlier = _new_file(directory, guessed)
            process = remote.start(guess, made.fd)
        with vault(path, vault_password_file, ask_vault_pass) as (_, vault_env):
            servers = remote.hosts(path, inventory, ansible_env(vault_env))
        if not servers:
            raise BadArgument(
                f"{inventory} has no servers", "add the host under servers: in its hosts.yml"
            )
        if host_name and host_name not in servers:
            raise BadArgument(
                f"{host_name} is not a server of {inventory} (its servers: {', '.join(servers)})",
                "name one of them with --host",
            )
        host: Host = servers[host_name] if host_name else next(iter(servers.values()))
        if not host_name and len(servers) > 1:
            say(
                f"{inventory} has {len(servers)} servers: pulling from {host.name} (--host picks another)"
            )
        ask(
            f"Replace the data of {stack.pg_database} of the app in {stack.app_dir} (project "
            f"{stack.project}) with a masked copy from {host.name}? What it holds now is kept first."
        )
        say(
            f"pulling from {host.name} ({inventory}): masked on the server by {rules.source}'s rules"
        )
        name = snapshot_name(inventory, host.name, len(servers) > 1)
        command = host.ssh("devkit", "db.pull.source")
        if made is not None and (command != guess or name != guessed):
            _stop(process)  # another server, or named otherwise: the guess is let go
            made.partial.unlink(missing_ok=True)
            made = process = None
        if made is None:
            made, earlier = _new_file(directory, name)
            process = remote.start(command, made.fd)
        reading = threading.Thread(target=lambda: errors.append(process.stderr.read()))
        reading.start()
        with contextlib.suppress(BrokenPipeError):  # ssh gone at once: its exit code says why
            process.stdin.write(rules.as_json().encode())
            process.stdin.close()

        def writing() -> bool:
            code = process.poll()
            if code is None:
                return True
            if code != 0:
                reading.join()
                raise remote.explain(
                    host, code, b"".join(errors).decode(errors="replace"), inventory
                )
            return False

        # What the database holds is kept (a snapshot) while the server starts and reads.
        with (
            following(made.partial, writing),
            kept_around(config, target, "db.restore", say=say) as kept,
        ):
            plan = restore.prepare(config, made.partial, restore.RestoreOptions(exact=True))
            result = restore.run(config, plan, say, kept=kept)
        process.wait()
        reading.join()
        with made.partial.open("rb") as done:
            os.fsync(done.fileno())
        published = publish(made)
    except BaseException as exc:
        if process is not None:
            _stop(process)
        if made is not None:  # the copy that did not land: nothing is left of it
            made.partial.unlink(missing_ok=True)
        if made_directory:  # nor of the backup directory it made (its .gitignore only)
            with contextlib.suppress(OSError):
                (directory / ".gitignore").unlink()
                directory.rmdir()
        if isinstance(exc, DevkitError):
            raise _not_unique(stack, rules, exc) or exc from None
        raise
    say(f"received {published.stat().st_size / 2**20:.1f} MiB: {published}")
    replaced = False
    if any(s.name == name for s in snapshots.list_snapshots(stack)):
        snapshots.drop(stack, name, say=lambda line: None)
        replaced = True
    snapshots.take(stack, name, say=lambda line: None)
    for path in earlier:  # the previous pull's file: the new one replaces it
        if remove_kit_file(path, directory):
            say(f"removed the previous pull's file {path.name}")
    digest = rules.digest()
    write_record(
        record_path(stack.project),
        {
            "inventory": inventory,
            "host": host.name,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "rules": digest,
            "snapshot": name,
            "file": str(published),
            # What the next pull reaches the server by while the inventory is read (above).
            "asked": host_name,
            "stamp": stamp,
            "ssh": command,
        },
    )
    return Pulled(host.name, inventory, published, result, name, replaced, digest)
