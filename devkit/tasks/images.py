"""images.*: the PostgreSQL 16 and Redis 7 images, built offline when no registry answers."""

from __future__ import annotations

from invoke import Collection, task

from devkit.tasks._cli import confirm, reports_errors


@task(
    help={
        "force": "Rebuild even when the image exists and its inputs did not change",
        "source": "auto (default: official if present or pullable, else build), registry, or local",
    }
)
@reports_errors
def build(c, force=False, source=None):
    """Provide the images: pull the official tags, or build them offline under devkit/ names."""
    from devkit.network import check, of_settings
    from devkit.paths import LOCAL_INVENTORY, PLAYBOOKS
    from devkit.playbook import run_playbook
    from devkit.settings.model import load_settings

    settings = load_settings({**c.config.devkit, **({"images_source": source} if source else {})})
    network = of_settings(settings)
    check(network)
    result = run_playbook(
        PLAYBOOKS / "images.yml",
        LOCAL_INVENTORY,
        {
            "images_source": settings.images_source,
            "images_force_build": force,
            "network_environment": network.environment(),
        },
    )
    print(f"images ready (Ansible: {result.changed} changed)")


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
