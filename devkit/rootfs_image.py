"""A root filesystem (debootstrap's) loaded into Docker as an image of a named architecture:
the images role's base for another architecture than the machine's (`devkit images.build --arch
arm64`, built under emulation).

Why not `docker import`: it records the engine's own architecture, whatever the files are, and
its --platform flag is ignored by engines without the experimental mode (checked on Debian's
Engine 20.10: an arm64 root filesystem imported with `--platform linux/arm64` came out as
amd64). An engine that thinks an arm64 image is amd64 runs it without a word, and the kit's
rule that a server only gets images of its own architecture (devkit/architectures.py) would
read the wrong one. So the image is written in the format `docker save` makes and `docker load`
reads (manifest.json, the image's config, one layer: the root filesystem as GNU tar makes it,
owners by number), with the architecture in the config.

    python3 -m devkit.rootfs_image --arch arm64 --tag devkit/debian:bookworm-arm64 ROOTFS
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from devkit.architectures import SUPPORTED, docker_arch

# The variant Docker records for each architecture that has one (the platform's "arm64/v8").
VARIANTS = {"arm64": "v8"}
CHUNK = 1 << 20


def _layer(rootfs: Path, into: Path) -> str:
    """ROOTFS as one uncompressed layer in INTO (GNU tar, as the images role's `docker import`
    path makes it); its sha256 (the layer's diff_id)."""
    digest = hashlib.sha256()
    with (
        into.open("wb") as out,
        subprocess.Popen(
            ["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE
        ) as tar,
    ):
        while chunk := tar.stdout.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if tar.returncode:
        raise SystemExit(f"tar of {rootfs} failed (exit {tar.returncode})")
    return digest.hexdigest()


def config(arch: str, diff_id: str, created: str) -> bytes:
    """The image's config (the OCI image config's fields as Docker writes them): ARCH, the one
    layer, and bash as its command, as the role's `docker import --change 'CMD ["bash"]'`."""
    body = {
        "architecture": arch,
        "os": "linux",
        "created": created,
        "config": {"Cmd": ["bash"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": created, "created_by": "devkit.rootfs_image (debootstrap)"}],
    }
    if arch in VARIANTS:
        body["variant"] = VARIANTS[arch]
    return json.dumps(body, sort_keys=True).encode()


def _member(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def write_archive(out, layer: Path, diff_id: str, arch: str, tag: str) -> None:
    """The `docker load` archive of one layer LAYER (DIFF_ID) tagged TAG, as ARCH, to OUT."""
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = config(arch, diff_id, created)
    config_name = f"{hashlib.sha256(body).hexdigest()}.json"
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{diff_id}/layer.tar"]}]
    with tarfile.open(fileobj=out, mode="w|") as archive:
        _member(archive, config_name, body)
        archive.add(str(layer), arcname=f"{diff_id}/layer.tar")
        _member(archive, "manifest.json", json.dumps(manifest).encode())


def load(rootfs: Path, arch: str, tag: str, scratch: Path) -> None:
    """ROOTFS into the engine as TAG, an image of ARCH (Docker's name), by `docker load`."""
    with tempfile.TemporaryDirectory(dir=scratch, prefix="devkit-layer.") as tmp:
        layer = Path(tmp) / "layer.tar"
        diff_id = _layer(rootfs, layer)
        with subprocess.Popen(["docker", "load", "--quiet"], stdin=subprocess.PIPE) as docker:
            write_archive(docker.stdin, layer, diff_id, arch, tag)
            docker.stdin.close()
        if docker.returncode:
            raise SystemExit(f"docker load of {tag} failed (exit {docker.returncode})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", required=True, help=f"Docker's name: {', '.join(SUPPORTED)}")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--scratch", default=tempfile.gettempdir(), help="For the layer file")
    parser.add_argument("rootfs", type=Path)
    args = parser.parse_args(argv)
    load(args.rootfs, docker_arch(args.arch), args.tag, Path(args.scratch))


if __name__ == "__main__":
    sys.exit(main())
