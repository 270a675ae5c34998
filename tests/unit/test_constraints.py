"""constraints.txt, the lock: every distribution the kit installs, at one version. Without it a
fresh clone took whatever PyPI held that day: cryptography 51 (a dependency of ansible-core's)
made every `ansible-playbook` run print a DSA deprecation warning into setup's output."""

import re
import tomllib
from importlib import metadata

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devkit.bundle import CONSTRAINTS
from devkit.paths import KIT_ROOT

pytestmark = pytest.mark.unit

PROJECT = tomllib.loads((KIT_ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = ("provision", "test")


def locked() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", line).groups()
            pins[canonicalize_name(name)] = version
    return pins


# Debian 12's Python, the servers' usual one: redis asks for async-timeout before 3.11.3.
DEBIAN_12 = {"python_full_version": "3.11.2", "python_version": "3.11"}


def needed(python: dict | None = None) -> set[str]:
    """What installing the kit with its extras brings, by the installed distributions' own
    metadata, markers evaluated for this interpreter (or for another Python's versions)."""
    environment = {**default_environment(), **(python or {})}
    wanted = [Requirement(r) for r in PROJECT["dependencies"]]
    wanted += [Requirement(r) for extra in EXTRAS for r in PROJECT["optional-dependencies"][extra]]
    seen: set[str] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:  # needed by another Python only: its name is all
            continue
        for line in requires:
            nested = Requirement(line)
            extras = [{**environment, "extra": e} for e in ["", *sorted(requirement.extras)]]
            if nested.marker is None or any(nested.marker.evaluate(env) for env in extras):
                wanted.append(nested)
    return seen


def test_every_pin_of_pyproject_is_the_locked_version():
    pins = locked()
    declared = PROJECT["dependencies"] + [
        r for extra in EXTRAS for r in PROJECT["optional-dependencies"][extra]
    ]
    for line in declared:
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", line
        assert pins.get(canonicalize_name(requirement.name)) == specifier.version, line


def test_the_lock_names_everything_the_kit_installs_and_it_is_what_is_installed():
    pins = locked()
    for python in (None, DEBIAN_12):
        missing = needed(python) - pins.keys()
        assert not missing, f"not in constraints.txt (write it again, see its header): {missing}"
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    for name in needed():
        assert installed.get(name) == pins[name], (name, installed.get(name), pins[name])
