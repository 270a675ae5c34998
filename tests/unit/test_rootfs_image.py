"""devkit/rootfs_image.py writes what `docker load` reads: the format `docker save` makes
(manifest.json naming the config and the layers, the config's rootfs.diff_ids the sha256 of each
uncompressed layer). The integration test test_images_arm64.py loads one into the engine; this
one reads the archive back as the engine would."""

import hashlib
import io
import json
import tarfile

import pytest

from devkit.rootfs_image import config, write_archive

pytestmark = pytest.mark.unit


def test_the_archive_carries_the_architecture_and_the_layers_digest(tmp_path):
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        data = b"hello\n"
        info = tarfile.TarInfo("etc/motd")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    diff_id = hashlib.sha256(layer.read_bytes()).hexdigest()
    out = io.BytesIO()
    write_archive(out, layer, diff_id, "arm64", "devkit/debian:bookworm-arm64")
    out.seek(0)
    with tarfile.open(fileobj=out) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        [entry] = manifest
        body = archive.extractfile(entry["Config"]).read()
        layer_bytes = archive.extractfile(entry["Layers"][0]).read()
    assert entry["RepoTags"] == ["devkit/debian:bookworm-arm64"]
    assert entry["Config"] == f"{hashlib.sha256(body).hexdigest()}.json"
    image = json.loads(body)
    assert (image["architecture"], image["variant"], image["os"]) == ("arm64", "v8", "linux")
    assert image["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"]
    assert image["config"]["Cmd"] == ["bash"]


def test_an_architecture_without_a_variant_has_none():
    assert "variant" not in json.loads(config("amd64", "0" * 64, "2026-12-05T00:00:00Z"))
