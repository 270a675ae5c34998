"""A server gets images of its own architecture only (devkit/architectures.py, site.yml's check).

Machines' names are `uname -m`'s (Ansible's ansible_architecture): x86_64 on this machine;
aarch64 in a Debian bookworm arm64 rootfs run under qemu-user (as issue 31 records) and on a
Raspberry Pi with a 64-bit system; armv7l on a Raspberry Pi with a 32-bit one. The image lists
have the shape community.docker.docker_image_info returns (the engine's image inspect: RepoTags,
Architecture); the fleet test feeds the controller's real ones.
"""

import pytest

from devkit.architectures import (
    ArchitectureError,
    arch_name,
    controller_candidates,
    controller_choice,
    docker_arch,
    image_problems,
    machine,
    machine_problems,
)

pytestmark = pytest.mark.unit

AMD64 = [
    {"RepoTags": ["devkit/postgres:16-bookworm"], "Architecture": "amd64"},
    {"RepoTags": ["devkit/redis:7-bookworm", "devkit/redis:latest"], "Architecture": "amd64"},
]
NAMES = ["devkit/postgres:16-bookworm", "devkit/redis:7-bookworm"]


def test_machine_names_map_to_dockers():
    assert docker_arch("x86_64") == "amd64" and docker_arch("aarch64") == "arm64"
    assert docker_arch("arm64") == "arm64"
    with pytest.raises(ArchitectureError) as caught:
        docker_arch("armv7l")
    assert "armv7l" in caught.value.cause and "64-bit" in caught.value.hint


def test_images_of_the_hosts_architecture_pass():
    assert image_problems("pi", "x86_64", NAMES, AMD64) == []
    assert machine_problems("pi", "x86_64", recorded="amd64") == []
    assert machine_problems("pi", "aarch64") == []


def test_images_of_another_architecture_are_refused_naming_both():
    problems = image_problems("pi", "aarch64", NAMES, AMD64)
    assert len(problems) == 2
    assert all("pi is arm64 (aarch64)" in p and "is amd64" in p for p in problems)
    assert "devkit_images_source: auto" in problems[0]


def test_an_unknown_architecture_and_a_changed_machine_are_refused():
    # Whatever the images' source (machine_problems), and so before any image is looked at.
    (unknown,) = machine_problems("pi", "armv7l")
    assert "armv7l is not one the kit's images are made for" in unknown
    assert image_problems("pi", "armv7l", NAMES, AMD64) == [unknown]
    (changed,) = machine_problems("pi", "x86_64", recorded="arm64", record="/r")
    assert "pi was arm64 when it was last provisioned and is amd64" in changed
    assert "remove /r on pi" in changed
    (missing,) = image_problems("pi", "x86_64", ["other:tag"], AMD64)
    assert "other:tag is unknown" in missing


def test_builds_for_another_architecture_get_a_name_of_their_own():
    assert (
        arch_name("devkit/postgres:16-bookworm", "amd64", "amd64") == "devkit/postgres:16-bookworm"
    )
    assert (
        arch_name("devkit/postgres:16-bookworm", "arm64", "amd64")
        == "devkit/postgres:16-bookworm-arm64"
    )
    assert machine("arm64") == "aarch64" and machine("x86_64") == "x86_64"


ARM64_BUILDS = [
    *AMD64,
    {"RepoTags": ["devkit/postgres:16-bookworm-arm64"], "Architecture": "arm64"},
    {"RepoTags": ["devkit/redis:7-bookworm-arm64"], "Architecture": "arm64"},
]


def test_the_controller_ships_each_host_images_of_its_own_architecture():
    postgres = controller_candidates("postgres:16-bookworm", "devkit/postgres:16-bookworm")
    assert controller_choice(postgres, ARM64_BUILDS, "x86_64") == "devkit/postgres:16-bookworm"
    assert (
        controller_choice(postgres, ARM64_BUILDS, "aarch64") == "devkit/postgres:16-bookworm-arm64"
    )
    # An official image of the host's architecture comes first.
    official = [{"RepoTags": ["postgres:16-bookworm"], "Architecture": "arm64"}, *ARM64_BUILDS]
    assert controller_choice(postgres, official, "aarch64") == "postgres:16-bookworm"
    # Nothing of the host's: the controller's own, which image_problems then refuses naming both.
    chosen = controller_choice(postgres, AMD64, "aarch64")
    assert chosen == "devkit/postgres:16-bookworm"
    assert "images.build --arch arm64" in image_problems("pi", "aarch64", [chosen], AMD64)[0]
    # Nothing at all: the offline build's name (the images role says the controller has none).
    assert controller_choice(postgres, [], "aarch64") == "devkit/postgres:16-bookworm"
    assert controller_choice(postgres, ARM64_BUILDS, "armv7l") == "devkit/postgres:16-bookworm"
