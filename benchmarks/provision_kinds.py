"""Benchmark (run by hand): `invoke provision` on a fresh server of each kind, first run and
second run (nothing to change), as wall times of the command.

The servers are the CI test hosts (tests/fleet/testhosts.py, inventories/ci): devkit-ci-1
without an init system, devkit-ci-2 with systemd as PID 1. Each round starts both hosts fresh
and provisions one kind alone (`--limit`), first then second run; the kinds alternate which
goes first from round to round. The controller's image archive (.devkit/images) is kept between
runs, as it is for a user: a first run ships it, it does not make it.

    .venv/bin/python benchmarks/provision_kinds.py [--rounds 3]

Needs the kit's images (`invoke images.build` or setup) and the ports of inventories/ci free;
the hosts and the S3 server the inventory uploads to are removed at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fleet"))

import testhosts  # noqa: E402

INVOKE = str(Path(sys.executable).with_name("invoke"))
VAULT = ("--vault-password-file", "inventories/ci/vault-password.txt")


def provision(host: str) -> float:
    started = time.monotonic()
    result = subprocess.run(
        [INVOKE, "provision", "--inventory", "inventories/ci", *VAULT, "--limit", host],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"provision --limit {host} failed:\n{result.stdout[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, dict[str, list[float]]] = {
        kind: {"first": [], "second": []} for kind in testhosts.KINDS.values()
    }
    order = list(testhosts.KINDS.items())
    with testhosts.s3_server():
        try:
            for round_ in range(args.rounds):
                for host, kind in order if round_ % 2 == 0 else order[::-1]:
                    testhosts.up()
                    first, second = provision(host), provision(host)
                    times[kind]["first"].append(first)
                    times[kind]["second"].append(second)
                    print(f"round {round_ + 1} {kind}: first {first:.1f} s, second {second:.1f} s")
        finally:
            testhosts.down()
    for kind, runs in times.items():
        print(
            f"{kind}: first median {statistics.median(runs['first']):.1f} s "
            f"({', '.join(f'{t:.1f}' for t in runs['first'])}), second median "
            f"{statistics.median(runs['second']):.1f} s "
            f"({', '.join(f'{t:.1f}' for t in runs['second'])})"
        )


if __name__ == "__main__":
    main()
