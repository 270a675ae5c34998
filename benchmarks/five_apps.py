"""Benchmark (run by hand): five apps set up with `devkit setup` and running at once, listed by
`devkit apps`, and the idle memory of their stacks.

Each app is a new directory set up as a user does it (`devkit setup --no-vscode` in it, no
setting given): a stack of its own with the next free ports. After the stacks have been idle
for `--idle` seconds, the memory of their containers is read from `docker stats` (cgroup usage
minus page cache, as `docker stats` shows it), the median of `--samples` readings.

    .venv/bin/python benchmarks/five_apps.py [--apps 5] [--idle 60] [--keep]

Without --keep the stacks and app directories are removed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVKIT = str(Path(sys.executable).with_name("devkit"))
UNITS = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "kB": 1000, "MB": 1000**2}


def devkit(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DEVKIT, *args], cwd=cwd, capture_output=True, text=True, check=False)


def to_bytes(text: str) -> float:
    number = text.rstrip("BKMGTiab")
    unit = text[len(number) :]
    return float(number) * UNITS[unit]


def stack_memory(projects: list[str]) -> dict[str, float]:
    """MiB per project, summed over its containers, from one `docker stats --no-stream`."""
    out = subprocess.run(
        ["docker", "stats", "--no-stream", "--format", "{{json .}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    usage: dict[str, float] = dict.fromkeys(projects, 0.0)
    for line in out.splitlines():
        row = json.loads(line)
        for project in projects:
            if row["Name"].startswith(f"{project}-"):
                usage[project] += to_bytes(row["MemUsage"].split(" / ")[0]) / 1024**2
    return usage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=5)
    parser.add_argument("--idle", type=float, default=60)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="devkit-five-apps-"))
    apps = [base / f"app{n}" for n in range(1, args.apps + 1)]
    projects: list[str] = []
    try:
        for app in apps:
            app.mkdir()
            started = time.perf_counter()
            made = devkit("setup", "--no-vscode", cwd=app)
            if made.returncode != 0:
                sys.exit(f"setup in {app} failed:\n{made.stdout[-2000:]}{made.stderr}")
            chosen = next(line for line in made.stdout.splitlines() if "stack=" in line)
            projects.append(chosen.split("stack=")[1].strip())
            ports = next(line for line in made.stdout.splitlines() if "postgres 16" in line)
            print(
                f"{app.name}: {projects[-1]}  {ports.split()[2]}  setup {time.perf_counter() - started:.1f}s"
            )
        listed = devkit("apps", cwd=base)
        shown = [p for p in projects if p in listed.stdout]
        print(f"devkit apps lists {len(shown)} of {len(projects)}")
        print(listed.stdout)
        time.sleep(args.idle)
        samples = []
        for _ in range(args.samples):
            samples.append(stack_memory(projects))
            time.sleep(2)
        per_stack = {p: statistics.median(s[p] for s in samples) for p in projects}
        for project, mib in per_stack.items():
            print(f"{project}: {mib:.1f} MiB idle")
        total = sum(per_stack.values())
        print(
            f"{len(projects)} stacks idle: {total:.1f} MiB in all, {total / len(projects):.1f} MiB each"
        )
    finally:
        if not args.keep:
            for app in apps:
                env_file = app / ".env.local"
                if env_file.exists():
                    subprocess.run(
                        ["docker", "compose", "--env-file", str(env_file),
                         "-f", str(ROOT / "compose" / "compose.yaml"), "down", "--volumes"],
                        capture_output=True, check=False,
                    )  # fmt: skip
            for project in projects:
                (Path.home() / f".local/state/devkit/stacks/{project}.admin.env").unlink(
                    missing_ok=True
                )
                for previous in (Path.home() / ".local/state/devkit/env-backups").glob(
                    f"{project}.*"
                ):
                    previous.unlink()
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
