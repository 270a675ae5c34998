"""images.*: the PostgreSQL 16 and Redis 7 images, built offline when no registry answers."""

from __future__ import annotations

from invoke import Collection, task

from devkit.tasks._cli import reports_errors


@task(
    help={
        "force": "Rebuild even when the image exists and its inputs did not change",
        "source": "auto (default: official if present or pullable, else build), registry, or local",
    }
)
@reports_errors
def build(c, force=False, source=None):
    """Provide the images: pull the official tags, or build them offline under devkit/ names."""
    from devkit.paths import LOCAL_INVENTORY, PLAYBOOKS
    from devkit.playbook import run_playbook
    from devkit.settings import load_settings

    settings = load_settings({**c.config.devkit, **({"images_source": source} if source else {})})
    result = run_playbook(
        PLAYBOOKS / "images.yml",
        LOCAL_INVENTORY,
        {"images_source": settings.images_source, "images_force_build": force},
    )
    print(f"images ready (Ansible: {result.changed} changed)")


ns = Collection("images", build)
