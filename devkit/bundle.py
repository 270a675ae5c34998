"""The kit as a server receives it: one reproducible archive with its tasks, compose file,
pinned runtime requirements and their wheels, so a server installs the kit without reaching
PyPI (the `kit` role copies it, unpacks it and builds a virtualenv with `pip --no-index`).

Run on the controller by the kit role:
    .venv/bin/python -m devkit.bundle --python 3.11.2 --arch x86_64 --out DIR
prints the archive's path, then `changed` or `unchanged` (same bytes as the archive already there).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

from devkit.paths import KIT_ROOT

# What a server needs of the kit: the tasks (db.backup, db.prune, ...) and the compose file.
CONTENT = ("tasks.py", "pyproject.toml", "compose/compose.yaml", "devkit")
# The unpacked files' checksums, in `sha256sum --check`'s format: the kit role finds a file of
# the kit changed on a server (compose.yaml edited by hand) and unpacks the archive again.
MANIFEST = "MANIFEST.sha256"
# glibc 2.17 and later: every manylinux wheel a Debian 11+ or Ubuntu 20.04+ server can load.
MANYLINUX = ("manylinux2014", "manylinux_2_17", "manylinux_2_28", "manylinux_2_31")
# Every distribution the kit installs, at one version: what a server gets is what CI ran with,
# not what PyPI holds on the day (a new release of a dependency of a dependency changes nothing).
CONSTRAINTS = KIT_ROOT / "constraints.txt"


def requirements(pyproject: Path = KIT_ROOT / "pyproject.toml") -> list[str]:
    """The kit's pinned runtime dependencies (pyproject's [project] dependencies)."""
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def download_wheels(reqs: list[str], python: str, arch: str, cache: Path) -> Path:
    """Wheels for `python` (X.Y.Z: markers such as python_full_version < "3.11.3" depend on the
    patch level) on `arch`, downloaded once per requirement set into `cache`."""
    pins = CONSTRAINTS.read_text()
    key = hashlib.sha256("\n".join([python, arch, *reqs, pins]).encode()).hexdigest()[:16]
    wheels = cache / f"wheels-py{python}-{arch}-{key}"
    if (wheels / ".complete").exists():
        return wheels
    wheels.mkdir(parents=True, exist_ok=True)
    tag = "".join(python.split(".")[:2])
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
        "--abi", f"cp{tag}", "--abi", "abi3", "--abi", "none",
        "--platform", "any", *(f"--platform={p}_{arch}" for p in MANYLINUX),
        "--constraint", str(CONSTRAINTS), "--dest", str(wheels), *reqs,
    ]  # fmt: skip
    _pip(command, python, arch)
    # pip evaluates markers such as python_full_version with its own interpreter's version, not
    # --python-version's: add what the target needs and pip left out, until nothing is missing.
    while missing := _missing(wheels, python, arch):
        _pip(
            [*command[: command.index("--dest")], "--no-deps", "--dest", str(wheels), *missing],
            python,
            arch,
        )
    (wheels / ".complete").write_text("")
    return wheels


def _pip(command: list[str], python: str, arch: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["pip download failed"])[-1]
        raise SystemExit(
            f"error: cannot download the kit's wheels for Python {python} on {arch}: {last}"
        )


def _missing(wheels: Path, python: str, arch: str) -> list[str]:
    """Requirements of the downloaded wheels that apply on the target and have no wheel yet."""
    import zipfile
    from email.parser import Parser

    from packaging.requirements import Requirement  # comes with ansible-core on controllers
    from packaging.utils import canonicalize_name

    environment = {
        "python_version": ".".join(python.split(".")[:2]), "python_full_version": python,
        "platform_machine": arch, "sys_platform": "linux", "platform_system": "Linux",
        "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "extra": "",
    }  # fmt: skip
    present, wanted = set(), {}
    for wheel in wheels.glob("*.whl"):
        present.add(canonicalize_name(wheel.name.split("-")[0]))
        with zipfile.ZipFile(wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            metadata = Parser().parsestr(archive.read(name).decode())
        for line in metadata.get_all("Requires-Dist") or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                wanted[canonicalize_name(requirement.name)] = (
                    f"{requirement.name}{requirement.specifier}"
                )
    return sorted(spec for name, spec in wanted.items() if name not in present)


def _add(archive: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    archive.addfile(info, io.BytesIO(data))


def _files() -> list[tuple[str, Path]]:
    found = []
    for entry in CONTENT:
        path = KIT_ROOT / entry
        paths = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        found += [(str(p.relative_to(KIT_ROOT)), p) for p in paths if "__pycache__" not in p.parts]
    return found


def manifest(files: list[tuple[str, bytes]]) -> str:
    """`sha256sum`'s lines for FILES (name, content)."""
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files)


def _inputs_digest(files: list[tuple[str, bytes]], reqs: list[str], wheels: list[Path]) -> str:
    """What the archive is made of: the kit's files, its requirements, the wheels' names (a
    wheel's name carries its version and build)."""
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
    digest.update("\0".join([*reqs, *(wheel.name for wheel in wheels)]).encode())
    return digest.hexdigest()


def build(python: str, arch: str, out: Path) -> tuple[Path, bool]:
    """Write out/devkit-kit-pyX.Y-ARCH.tar.gz; False when the same bytes were already there.
    The archive is not made again when its inputs are those it was made of (its .inputs file):
    compressing the wheels was most of a provision run's time on the controller for each host."""
    reqs = requirements()
    wheels = sorted(download_wheels(reqs, python, arch, out / "cache").glob("*.whl"))
    files = [(name, path.read_bytes()) for name, path in _files()]
    target = out / f"devkit-kit-py{python}-{arch}.tar.gz"
    stamp = target.with_name(f"{target.name}.inputs")
    digest = _inputs_digest(files, reqs, wheels)
    if target.exists() and stamp.exists() and stamp.read_text() == digest:
        return target, False
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        requirements_txt = ("requirements.txt", ("\n".join(reqs) + "\n").encode())
        for name, data in [*files, requirements_txt]:
            _add(archive, name, data)
        _add(archive, MANIFEST, manifest([*files, requirements_txt]).encode())
        for wheel in wheels:
            _add(archive, f"wheels/{wheel.name}", wheel.read_bytes())
    data = buffer.getvalue()
    changed = not (target.exists() and target.read_bytes() == data)
    if changed:
        partial = target.with_suffix(".partial")
        partial.write_bytes(data)
        partial.replace(target)
    stamp.write_text(digest)
    return target, changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True, help="The server's Python, X.Y.Z")
    parser.add_argument("--arch", required=True, help="The server's machine, e.g. x86_64")
    parser.add_argument("--out", required=True, type=Path, help="Directory for the archive")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    target, changed = build(args.python, args.arch, args.out)
    print(target)
    print("changed" if changed else "unchanged")


if __name__ == "__main__":
    main()
