"""The machine architectures the kit's images are made for, in Docker's names, and the rule
that a server only ever gets images of its own architecture (site.yml's check before any
change, through playbooks/filter_plugins; the images role's record of each server's).

A machine names its architecture as `uname -m` does (Ansible's ansible_architecture): x86_64,
aarch64 (a Raspberry Pi 3, 4 or 5 with a 64-bit system), armv7l (a 32-bit one). Docker names
an image's as amd64, arm64, arm.
"""

from __future__ import annotations

from devkit.errors import DevkitError

DOCKER_NAMES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
SUPPORTED = ("amd64", "arm64")
# uname -m's name for each of Docker's: qemu-user-static's emulators are named by it
# (qemu-aarch64), and so is what a machine of that architecture reports.
MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}


class ArchitectureError(DevkitError):
    """An architecture the kit makes no images for, or images of another one."""


def docker_arch(machine: str) -> str:
    """Docker's name for MACHINE (uname -m's or Docker's own); ArchitectureError for one the
    kit's images are not made for."""
    try:
        return DOCKER_NAMES[machine.strip().lower()]
    except KeyError:
        raise ArchitectureError(
            f"the architecture {machine or '(none)'} is not one the kit's images are made for "
            f"({', '.join(SUPPORTED)})",
            "use a 64-bit system on the board (Raspberry Pi OS 64-bit is arm64), or another host",
        ) from None


def machine(arch: str) -> str:
    """uname -m's name for ARCH (Docker's or uname's): qemu-user-static's emulator and the
    wheels' platform tags are named by it."""
    return MACHINES[docker_arch(arch)]


def arch_name(name: str, arch: str, own: str) -> str:
    """The kit's name for its offline build NAME made for ARCH on a machine of OWN (Docker's
    names): NAME itself for the machine's own architecture, NAME-ARCH for another one (built
    under emulation by `devkit images.build --arch`), so both live in one engine."""
    return name if arch == own else f"{name}-{arch}"


def controller_candidates(official: str, local: str) -> list[str]:
    """The controller's images that may be shipped for one service, in order of preference:
    the official tag, the offline build of the controller's own architecture, and its offline
    builds for the others."""
    return [official, local, *(arch_name(local, arch, "") for arch in SUPPORTED)]


def controller_choice(candidates: list[str], listed: list[dict], machine: str) -> str:
    """Which of CANDIDATES (controller_candidates) to ship to a host whose uname -m is MACHINE,
    as the controller's engine lists them (LISTED: docker_image_info's `images`): the first
    made for the host's architecture; else the first the controller has (image_problems then
    names both architectures); else the offline build's name (the images role then says the
    controller has none)."""
    try:
        wanted = docker_arch(machine)
    except ArchitectureError:
        wanted = None
    present = {
        tag: image.get("Architecture", "")
        for image in listed
        for tag in image.get("RepoTags") or []
    }
    return next(
        (name for name in candidates if name in present and present[name] == wanted),
        next((name for name in candidates if name in present), candidates[1]),
    )


def machine_problems(
    host: str, machine: str, recorded: str = "", record: str = "/var/lib/devkit/architecture"
) -> list[str]:
    """Why HOST (its uname -m: MACHINE) must not be provisioned at all, whatever its images'
    source: an architecture the kit makes no images for, or another one than RECORDED, the
    architecture it had when last provisioned ("" for none), kept in the file RECORD there.
    [] when nothing is wrong."""
    try:
        own = docker_arch(machine)
    except ArchitectureError as exc:
        return [f"{host}: {exc.cause}; {exc.hint}"]
    if recorded and recorded != own:
        return [
            f"{host} was {recorded} when it was last provisioned and is {own} ({machine}) now: "
            f"another machine at its address? Its images, the kit's wheels and its database "
            f"volume were made on {recorded}; back its data up from the old machine "
            f"(devkit db.backup), then remove {record} on {host} and provision"
        ]
    return []


def image_problems(host: str, machine: str, names: list[str], listed: list[dict]) -> list[str]:
    """Why HOST (its uname -m: MACHINE) must not get the images NAMES, as the controller's
    engine lists them (LISTED: community.docker.docker_image_info's `images`, each with its
    RepoTags and Architecture), each one line naming both architectures (the machine itself:
    machine_problems). [] when nothing is wrong."""
    unserved = machine_problems(host, machine)
    if unserved:
        return unserved
    own = docker_arch(machine)
    images = {
        name: next(
            (i.get("Architecture", "") for i in listed if name in (i.get("RepoTags") or [])), ""
        )
        for name in names
    }
    return [
        f"{host} is {own} ({machine}) but the controller's {name} is {arch or 'unknown'}: "
        f"refused before any change; build {own} images on the controller first "
        f"(devkit images.build --arch {own}), or set devkit_images_source: auto for "
        f"{host} (it pulls the official images, which are made for {own} too)"
        for name, arch in sorted(images.items())
        if arch != own
    ]
