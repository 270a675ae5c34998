"""images.*: the PostgreSQL 16 and Redis 7 images, built offline when no registry answers."""

from __future__ import annotations

from invoke import Collection, task

from devkit.tasks._cli import confirm, reports_errors


@task(
    help={
        "force": "Rebuild even when the image exists and its inputs did not change",
        "source": "auto (default: official if present or pullable, else build), registry, or local",
        "arch": "Build for another architecture under emulation (arm64, for a Raspberry Pi server; amd64): offline builds named ...-ARCH, which provision ships to servers of that architecture",
    }
)
@reports_errors
def build(c, force=False, source=None, arch=None):
    """Provide the images: pull the official tags, or build them offline under devkit/ names."""
    from devkit.network import check, of_settings
    from devkit.paths import LOCAL_INVENTORY, PLAYBOOKS
    from devkit.playbook import run_playbook
    from devkit.settings.model import load_settings

    settings = load_settings({**c.config.devkit, **({"images_source": source} if source else {})})
    extra = {"images_source": settings.images_source}
    if arch:
        extra = _foreign_build(arch, source)
    network = of_settings(settings)
    check(network)
    result = run_playbook(
        PLAYBOOKS / "images.yml",
        LOCAL_INVENTORY,
        {**extra, "images_force_build": force, "network_environment": network.environment()},
    )
    built = f" for {extra['images_arch']} (names ending -{extra['images_arch']})" if arch else ""
    print(f"images ready{built} (Ansible: {result.changed} changed)")


def _foreign_build(arch: str, source: str | None) -> dict:
    """The playbook's variables for a build for ARCH (images.build --arch): offline builds only,
    as the registry's images of another architecture are not pulled here."""
    from devkit.architectures import SUPPORTED, ArchitectureError, docker_arch
    from devkit.errors import BadArgument

    try:
        wanted = docker_arch(arch)
    except ArchitectureError as exc:
        raise BadArgument(
            f"--arch {arch}: {exc.cause}", f"--arch {' or --arch '.join(SUPPORTED)}"
        ) from None
    if source not in (None, "local"):
        raise BadArgument(
            f"--source {source} with --arch {arch}: another architecture's images are built "
            "here, under emulation, not pulled",
            f"drop --source: devkit images.build --arch {arch}",
        )
    return {"images_arch": wanted, "images_source": "local"}


@task(name="prune-export", help={"yes": "Do not ask (required without a terminal)"})
@reports_errors
def prune_export(c, yes=False):
    """Delete the image set `provision` exported for servers (about 550 MB), after listing it.

    .devkit/images/*.tar; the next provision exports it again when a server needs it."""
    from devkit.paths import KIT_ROOT

    directory = KIT_ROOT / ".devkit" / "images"
    archives = sorted(directory.glob("devkit-images-*.tar")) if directory.is_dir() else []
    if not archives:
        print(f"nothing to delete: no exported image set in {directory}")
        return
    for archive in archives:
        print(f"{archive}  {archive.stat().st_size / (1 << 20):.0f} MiB")
    confirm(yes, "prune-export deletes the files listed", f"Delete these {len(archives)} file(s)?")
    for archive in archives:
        archive.unlink()
        print(f"deleted {archive.name}")


ns = Collection("images", build, prune_export)
