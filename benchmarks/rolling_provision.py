"""Benchmark (run by hand): what the app sees while `provision` makes the stacks of two servers
anew, all at once and with `--serial 1`.

The servers are the CI test hosts (tests/fleet/testhosts.py, inventories/ci), provisioned once.
Each round changes the servers' memory setting (`devkit_memory_mb`, in a copy of the inventory,
flipping between 1200 and the machine's own), which makes both containers of each stack anew;
meanwhile each host runs an authenticated query and a PING every 0.1 s with the app's passwords
(testhosts.APP_PROBE). Per round and mode: each host's failed probes, their window, and whether
the two hosts' windows overlapped. Modes alternate which goes first.

    .venv/bin/python benchmarks/rolling_provision.py [--rounds 3]

Needs the kit's images and the ports of inventories/ci free; the hosts and the S3 server are
removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fleet"))

import testhosts  # noqa: E402

DEVKIT = str(Path(sys.executable).with_name("devkit"))


def provision(inventory: Path, *args: str) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [DEVKIT, "provision", "--inventory", str(inventory),
         f"--vault-password-file={inventory}/vault-password.txt", *args],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        sys.exit(f"provision failed:\n{result.stdout[-3000:]}{result.stderr}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    hosts = list(testhosts.HOSTS)
    with tempfile.TemporaryDirectory() as scratch, testhosts.s3_server():
        inventory = Path(scratch) / "inventory"
        shutil.copytree(ROOT / "inventories" / "ci", inventory)
        memory = inventory / "group_vars" / "servers" / "memory.yml"
        testhosts.up()
        try:
            provision(inventory)
            for host in hosts:
                testhosts.ssh(host, "devkit db.psql -c 'CREATE TABLE fleet_probe (id int)'")
            print("| round | mode | provision | " + " | ".join(hosts) + " | overlap |")
            print("| --- | --- | --- | " + " | ".join("---" for _ in hosts) + " | --- |")
            flip = False
            for round_ in range(1, args.rounds + 1):
                modes = [(), ("--serial", "1")]
                for mode in modes if round_ % 2 else modes[::-1]:
                    flip = not flip
                    memory.write_text("devkit_memory_mb: 1200\n" if flip else "")
                    with testhosts.app_probes(hosts) as failures:
                        took = provision(inventory, *mode)
                    windows = {h: (min(f), max(f)) if (f := failures[h]) else None for h in hosts}
                    cells = [
                        f"{len(failures[h])} failed over {w[1] - w[0]:.1f} s" if w else "none"
                        for h, w in windows.items()
                    ]
                    a, b = windows.values()
                    overlap = bool(a and b and a[0] <= b[1] and b[0] <= a[1])
                    label = " ".join(mode) or "all at once"
                    print(
                        f"| {round_} | {label} | {took:.0f} s | {' | '.join(cells)} | {overlap} |"
                    )
        finally:
            testhosts.down()


if __name__ == "__main__":
    main()
