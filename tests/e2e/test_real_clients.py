"""Every real client pushes to moorage, and every other real client pulls what it pushed.

skopeo, podman, the docker engine and containerd's ctr, single-platform images and a two-platform
index, OCI and Docker media types, all against one moorage server with two worker processes.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.clients import Containerd, DockerCli, Podman, Skopeo
from tests.support.images import (
    DOCKER_LIST,
    OCI_INDEX,
    ImageInfo,
    IndexInfo,
    blob_path,
    build_image,
    build_multiplatform,
    local_platform,
    tagged_descriptor,
)
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

CREDS = f"admin:{ADMIN_PASSWORD}"


@pytest.fixture
def project(moorage: MoorageServer) -> str:
    return moorage.project("clients")


@pytest.fixture
def logged_in_docker(docker: DockerCli, moorage: MoorageServer) -> DockerCli:
    docker.login(moorage.host, "admin", ADMIN_PASSWORD)
    return docker


def manifest(moorage: MoorageServer, repo: str, reference: str, accept: str) -> httpx.Response:
    with moorage.client() as client:
        return client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": accept})


def test_skopeo_push_is_pulled_by_podman_ctr_and_docker(
        moorage: MoorageServer, project: str, skopeo: Skopeo, podman: Podman, containerd: Containerd,
        logged_in_docker: DockerCli, oci_image: ImageInfo) -> None:
    reference = f"{moorage.host}/{project}/single:v1"
    skopeo.push(oci_image, reference, creds=CREDS)
    stored = manifest(moorage, f"{project}/single", "v1", oci_image.media_type)
    assert stored.content == oci_image.manifest_bytes

    podman.pull(reference, creds=CREDS)
    assert podman.digest(reference) == oci_image.digest

    containerd.pull(reference, user=CREDS)
    assert containerd.images()[reference] == oci_image.digest
    assert containerd.is_unpacked(oci_image)

    logged_in_docker.pull(reference)
    assert f"{moorage.host}/{project}/single@{oci_image.digest}" in logged_in_docker.repo_digests(reference)
    assert logged_in_docker.inspect(reference)["RootFS"]["Layers"] == oci_image.diff_ids


def test_two_platform_index_is_pulled_by_every_client(
        moorage: MoorageServer, project: str, skopeo: Skopeo, podman: Podman, containerd: Containerd,
        logged_in_docker: DockerCli, oci_index: IndexInfo, tmp_path: Path) -> None:
    reference = f"{moorage.host}/{project}/multi:v1"
    skopeo.push(oci_index, reference, creds=CREDS)
    index = manifest(moorage, f"{project}/multi", "v1", OCI_INDEX)
    assert index.headers["Docker-Content-Digest"] == oci_index.digest
    assert index.content == oci_index.manifest_bytes

    containerd.pull(reference, user=CREDS)
    assert containerd.images()[reference] == oci_index.digest
    assert containerd.is_unpacked(oci_index.for_platform(*local_platform()))
    other = oci_index.images[1]
    containerd.pull(reference, user=CREDS, platform=f"{other.platform[0]}/{other.platform[1]}")
    assert set(other.layer_digests) <= set(containerd.ctr("content", "ls", "--quiet").stdout.split())

    podman.pull(reference, creds=CREDS)
    assert podman.digest(reference) == oci_index.digest

    logged_in_docker.pull(reference)
    assert logged_in_docker.inspect(reference)["RootFS"]["Layers"] == \
        oci_index.for_platform(*local_platform()).diff_ids

    skopeo.copy(f"docker://{reference}", f"oci:{tmp_path / 'back'}:v1", all_images=True, creds=CREDS,
                preserve_digests=True)
    assert tagged_descriptor(tmp_path / "back", "v1")["digest"] == oci_index.digest


def test_docker_pushes_what_podman_and_ctr_pull(
        moorage: MoorageServer, project: str, skopeo: Skopeo, podman: Podman, containerd: Containerd,
        logged_in_docker: DockerCli, oci_image: ImageInfo) -> None:
    source = f"{moorage.host}/{project}/from-skopeo:v1"
    target = f"{moorage.host}/{project}/from-docker:retagged"
    skopeo.push(oci_image, source, creds=CREDS)
    logged_in_docker.pull(source)
    logged_in_docker.tag(source, target)
    pushed = logged_in_docker.push(target)
    assert "retagged: digest: sha256:" in pushed.stdout

    podman.pull(target, creds=CREDS)
    assert podman.inspect(target)["RootFS"]["Layers"] == oci_image.diff_ids
    containerd.pull(target, user=CREDS)
    assert target in containerd.images()
    assert skopeo.inspect(target, config=True, creds=CREDS)["rootfs"]["diff_ids"] == oci_image.diff_ids


def test_podman_and_ctr_push_what_the_others_pull(
        moorage: MoorageServer, project: str, skopeo: Skopeo, podman: Podman, containerd: Containerd,
        logged_in_docker: DockerCli, oci_image: ImageInfo) -> None:
    source = f"{moorage.host}/{project}/seed:v1"
    skopeo.push(oci_image, source, creds=CREDS)

    podman.pull(source, creds=CREDS)
    by_podman = f"{moorage.host}/{project}/from-podman:v1"
    podman.tag(source, by_podman)
    podman.push(by_podman, creds=CREDS)
    logged_in_docker.pull(by_podman)
    assert logged_in_docker.inspect(by_podman)["RootFS"]["Layers"] == oci_image.diff_ids

    containerd.pull(source, user=CREDS)
    by_ctr = f"{moorage.host}/{project}/from-ctr:v1"
    containerd.tag(source, by_ctr)
    containerd.push(by_ctr, user=CREDS)
    # ctr pushes the bytes it pulled: the same manifest digest arrives under the new name.
    assert skopeo.inspect(by_ctr, creds=CREDS)["Digest"] == oci_image.digest
    podman.pull(by_ctr, creds=CREDS)
    assert podman.digest(by_ctr) == oci_image.digest


def test_docker_media_types_round_trip(
        moorage: MoorageServer, project: str, skopeo: Skopeo, containerd: Containerd,
        logged_in_docker: DockerCli, tmp_path: Path) -> None:
    image = build_image(tmp_path / "docker-image", tag="v1", flavor="docker")
    listing = build_multiplatform(tmp_path / "docker-list", tag="v1", flavor="docker")
    skopeo.push(image, f"{moorage.host}/{project}/docker-types:single", creds=CREDS)
    skopeo.push(listing, f"{moorage.host}/{project}/docker-types:list", creds=CREDS)

    got = manifest(moorage, f"{project}/docker-types", "list", DOCKER_LIST)
    assert (got.headers["Content-Type"], got.headers["Docker-Content-Digest"]) == (DOCKER_LIST, listing.digest)
    logged_in_docker.pull(f"{moorage.host}/{project}/docker-types:list")
    containerd.pull(f"{moorage.host}/{project}/docker-types:single", user=CREDS)
    assert containerd.images()[f"{moorage.host}/{project}/docker-types:single"] == image.digest
    for layer in image.layers:
        with moorage.client() as client:
            served = client.get(f"/v2/{project}/docker-types/blobs/{layer.digest}").content
        assert served == blob_path(image.layout, layer.digest).read_bytes()
