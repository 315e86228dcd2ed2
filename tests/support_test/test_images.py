"""The image builder writes layouts that are valid by construction: digests, sizes and diff_ids check out."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.support.images import (
    DOCKER_LIST,
    OCI_CONFIG,
    OCI_MANIFEST,
    REF_NAME,
    blob_path,
    build_image,
    build_multiplatform,
    digest_of,
    dir_view,
    local_platform,
    read_index,
    tagged_descriptor,
)

pytestmark = pytest.mark.fast


def test_layers_are_gzip_tars_whose_diff_ids_are_in_the_config(tmp_path: Path) -> None:
    image = build_image(tmp_path, tag="v1", layers=2, layer_size=[10, 50_000])

    manifest = json.loads(blob_path(tmp_path, image.digest).read_bytes())
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["config"]["mediaType"] == OCI_CONFIG
    config = json.loads(blob_path(tmp_path, image.config.digest).read_bytes())
    assert (config["os"], config["architecture"]) == local_platform()
    assert config["rootfs"] == {"type": "layers", "diff_ids": image.diff_ids}
    for layer, diff_id in zip(image.layers, image.diff_ids, strict=True):
        compressed = blob_path(tmp_path, layer.digest).read_bytes()
        assert (digest_of(compressed), len(compressed)) == (layer.digest, layer.size)
        raw = gzip.decompress(compressed)
        assert digest_of(raw) == diff_id
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            members = tar.getmembers()
        assert any(member.isfile() and member.size > 0 for member in members)
    assert tagged_descriptor(tmp_path, "v1")["digest"] == image.digest
    assert (tmp_path / "oci-layout").exists()


def test_every_image_is_unique_and_tags_share_a_layout(tmp_path: Path) -> None:
    first = build_image(tmp_path, tag="a")
    second = build_image(tmp_path, tag="b")
    replaced = build_image(tmp_path, tag="a")

    assert len({first.digest, second.digest, replaced.digest}) == 3
    assert set(first.layer_digests).isdisjoint(second.layer_digests)
    tags = {m["annotations"][REF_NAME]: m["digest"] for m in read_index(tmp_path)["manifests"]}
    assert tags == {"a": replaced.digest, "b": second.digest}


def test_multiplatform_index_lists_this_machine_first(tmp_path: Path) -> None:
    index = build_multiplatform(tmp_path, tag="v1")
    document = json.loads(index.manifest_bytes)
    platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in document["manifests"]]
    assert platforms[0] == local_platform() and len(set(platforms)) == 2
    assert [m["digest"] for m in document["manifests"]] == [image.digest for image in index.images]


def test_docker_flavor_has_a_dir_transport_copy(tmp_path: Path) -> None:
    index = build_multiplatform(tmp_path, tag="list", flavor="docker")
    view = dir_view(tmp_path, "list")
    assert index.media_type == DOCKER_LIST
    assert index.ref == f"dir:{view}"
    assert (view / "manifest.json").read_bytes() == index.manifest_bytes
    for image in index.images:
        assert (view / f"{image.digest.split(':')[1]}.manifest.json").read_bytes() == image.manifest_bytes
        for layer in image.layers:
            assert (view / layer.digest.split(":")[1]).exists()
