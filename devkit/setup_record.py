"""What a full `devkit setup` left, so that the next one can skip its playbook when nothing it
manages could have changed (a second setup took 12-16 s, nearly all of it Ansible's ~60 tasks at
0.2-0.8 s each with nothing to do; every `git pull` of the kit asks for one).

The playbook is skipped only when all of these are as the last full run left them:
- its inputs: the playbook's variables (settings, .env.local's values, passwords: only their
  digest is kept), the kit's provisioning sources (playbooks/, roles/, compose/, the VS Code
  templates, and the modules of devkit/ that these can run: those the roles' filters import,
  those a task runs with `-m`, and everything they import, devkit/kit_code.py), ansible.cfg
  and Ansible's version;
- every path the run's tasks wrote or looked at, as Ansible named them
  (playbooks/callback_plugins/devkit_files.py): content, mode and owner, or its absence; plus
  /etc/group (the docker group's members) and dpkg's status (packages added or removed);
- the app's containers (the same ones, running, with the restart policy and stop timeout
  compose.yaml gives them) and the images they run.
Otherwise, or with `setup --full`, the playbook runs, and its changed=N is what it says.

The record is private (0600) in the user's state directory: stacks/<project>.setup.json.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from devkit.paths import KIT_ROOT, state_dir

# The kit's files whose change may change what the playbook does; of devkit/'s code, the modules
# these name and what those import (devkit/kit_code.py), and the code that prepares and runs the
# playbook.
SOURCES = ("playbooks", "roles", "compose", "vscode-templates")
SOURCE_FILES = ("ansible.cfg", "pyproject.toml", "constraints.txt")
RUNNERS = ("devkit.workstation", "devkit.playbook", "devkit.ansible_playbook")
# Paths no task names but the playbook's result depends on.
ALSO_WATCHED = ("/etc/group", "/var/lib/dpkg/status")


def inputs_digest(variables: dict, root: Path = KIT_ROOT) -> str:
    """SHA-256 over the playbook's variables, the kit's provisioning sources and Ansible's
    version."""
    digest = hashlib.sha256()
    digest.update(json.dumps(variables, sort_keys=True, default=str).encode())
    with contextlib.suppress(metadata.PackageNotFoundError):
        digest.update(metadata.version("ansible-core").encode())
    from devkit.kit_code import closure, mentioned

    files = [root / name for name in SOURCE_FILES]
    for top in SOURCES:
        files += [p for p in (root / top).rglob("*") if "__pycache__" not in p.parts]
    named = set(RUNNERS).union(*(mentioned(path) for path in files if path.is_file()))
    files += closure(named, root)
    for path in sorted(set(files)):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fingerprint(path: str) -> str:
    """What PATH is now: a file's content digest with its mode and owner, a directory's mode and
    owner, another kind's type, or its absence (or that it cannot be read)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        return f"error {exc.errno}"
    owner = f"{stat.S_IMODE(info.st_mode):o} {info.st_uid}:{info.st_gid}"
    if stat.S_ISREG(info.st_mode):
        try:
            with open(path, "rb") as file:
                return f"file {hashlib.file_digest(file, 'sha256').hexdigest()} {owner}"
        except OSError:
            return f"file unreadable {info.st_size} {info.st_mtime_ns} {owner}"
    if stat.S_ISDIR(info.st_mode):
        return f"dir {owner}"
    return f"other {stat.S_IFMT(info.st_mode):o} {owner}"


def engine_state(project: str) -> dict[str, dict[str, str]]:
    """The project's containers (name -> "ID image-ID restart-policy stop-timeout state": a
    policy changed behind Compose is the playbook's to put back) and the image IDs their image
    names give now (a rebuilt image: the playbook would recreate them); empty maps when the
    engine does not say."""
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    ids = listed.stdout.split()
    if listed.returncode != 0 or not ids:
        return {"containers": {}, "images": {}}
    shown = subprocess.run(
        ["docker", "inspect", "--format",
         "{{.Name}} {{.Config.Image}} {{.Id}} {{.Image}} {{.HostConfig.RestartPolicy.Name}} "
         "{{.Config.StopTimeout}} {{.State.Status}}", *ids],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    found = {
        name.lstrip("/"): (tag, " ".join(rest))
        for name, tag, *rest in (line.split() for line in shown.stdout.splitlines() if line)
    }
    tags = sorted({tag for tag, _ in found.values()})
    images = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", *tags],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    return {
        "containers": {name: seen for name, (_, seen) in found.items()},
        "images": dict(zip(tags, images, strict=False)),
    }


def _record_path(project: str) -> Path:
    return state_dir() / "stacks" / f"{project}.setup.json"


@contextlib.contextmanager
def files_named() -> Iterator[tuple[dict[str, str], list[str]]]:
    """The environment for ansible-playbook that has devkit_files write the paths of the run,
    and the list they are read into once the run is over."""
    paths: list[str] = []
    with tempfile.TemporaryDirectory(prefix="devkit-files.") as tmp:
        target = Path(tmp) / "paths.json"
        yield {"DEVKIT_FILES_RECORD": str(target)}, paths
        if target.exists():
            paths.extend(json.loads(target.read_text()))


def save(project: str, digest: str, paths: list[str]) -> None:
    """Record a full run that ended well (its paths as they are now; its containers)."""
    watched = sorted({*paths, *ALSO_WATCHED})
    record = {
        "inputs": digest,
        "paths": {path: fingerprint(path) for path in watched},
        **engine_state(project),
    }
    target = _record_path(project)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".setup.", suffix=".partial")
    with os.fdopen(fd, "w") as out:  # mkstemp: 0600 from its first byte
        json.dump(record, out, indent=1, sort_keys=True)
    os.replace(tmp, target)


def forget(project: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _record_path(project).unlink()


def unchanged(project: str, digest: str) -> bool:
    """Whether nothing the playbook manages changed since the last full run (the module's
    rule): its inputs, every path it named, the containers and their images."""
    try:
        record = json.loads(_record_path(project).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or record.get("inputs") != digest:
        return False
    paths = record.get("paths") or {}
    if any(fingerprint(path) != seen for path, seen in paths.items()):
        return False
    now = engine_state(project)
    return (
        bool(now["containers"])
        and now == {key: record.get(key) for key in now}
        and all(seen.endswith(" running") for seen in now["containers"].values())
    )
