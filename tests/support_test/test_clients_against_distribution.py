"""The harness proves itself against the reference registry: every real client pushes and pulls.

If these pass, a failing moorage end-to-end test points at moorage, not at the harness or the sandbox.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.clients import (
    CommandFailed,
    Containerd,
    Distribution,
    DockerCli,
    Podman,
    Skopeo,
    write_hosts_toml,
)
from tests.support.images import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    ImageInfo,
    IndexInfo,
    blob_path,
    build_image,
    build_multiplatform,
    local_platform,
    tagged_descriptor,
)
from tests.support.procs import ManagedProcess, ToolMissing, free_port, require_tool, wait_until
from tests.support.tlscerts import make_tls_files


def manifest_in_registry(registry: Distribution, repository: str, reference: str, accept: str) -> httpx.Response:
    return httpx.get(f"{registry.url}/v2/{repository}/manifests/{reference}", headers={"Accept": accept},
                     timeout=10)


def test_pushed_bytes_are_the_layout_bytes(skopeo: Skopeo, distribution: Distribution, oci_image: ImageInfo,
                                           unique_repo: str) -> None:
    skopeo.push(oci_image, f"{distribution.host}/{unique_repo}:v1")

    response = manifest_in_registry(distribution, unique_repo, "v1", OCI_MANIFEST)
    assert response.status_code == 200, response.text
    assert response.headers["Docker-Content-Digest"] == oci_image.digest
    assert response.content == oci_image.manifest_bytes
    for layer in oci_image.layers:
        blob = httpx.get(f"{distribution.url}/v2/{unique_repo}/blobs/{layer.digest}", timeout=10)
        assert blob.content == blob_path(oci_image.layout, layer.digest).read_bytes()
    assert skopeo.list_tags(f"{distribution.host}/{unique_repo}") == ["v1"]


def test_podman_ctr_and_docker_pull_what_skopeo_pushed(skopeo: Skopeo, podman: Podman, containerd: Containerd,
                                                       docker: DockerCli, distribution: Distribution,
                                                       oci_image: ImageInfo, unique_repo: str) -> None:
    reference = f"{distribution.host}/{unique_repo}:v1"
    skopeo.push(oci_image, reference)

    podman.pull(reference)
    assert podman.digest(reference) == oci_image.digest

    containerd.pull(reference)
    assert containerd.images()[reference] == oci_image.digest
    assert containerd.is_unpacked(oci_image), "ctr images pull must unpack the layers into a snapshot"

    docker.pull(reference)
    assert f"{distribution.host}/{unique_repo}@{oci_image.digest}" in docker.repo_digests(reference)
    assert docker.inspect(reference)["RootFS"]["Layers"] == oci_image.diff_ids


def test_multiplatform_index_pull_with_ctr(skopeo: Skopeo, containerd: Containerd, distribution: Distribution,
                                           oci_index: IndexInfo, unique_repo: str) -> None:
    reference = f"{distribution.host}/{unique_repo}:v1"
    skopeo.push(oci_index, reference)

    index = manifest_in_registry(distribution, unique_repo, "v1", OCI_INDEX)
    assert index.headers["Docker-Content-Digest"] == oci_index.digest
    assert [m["platform"]["architecture"] for m in index.json()["manifests"]] == \
        [image.platform[1] for image in oci_index.images]

    containerd.pull(reference)
    assert containerd.images()[reference] == oci_index.digest
    assert containerd.is_unpacked(oci_index.for_platform(*local_platform()))

    other = oci_index.images[1]
    containerd.pull(reference, platform=f"{other.platform[0]}/{other.platform[1]}")
    content = containerd.ctr("content", "ls", "--quiet").stdout.split()
    assert set(other.layer_digests) <= set(content), "the second platform's layers were fetched"


def test_docker_tag_and_push_to_another_repository(skopeo: Skopeo, docker: DockerCli, distribution: Distribution,
                                                   oci_image: ImageInfo, unique_repo: str) -> None:
    source = f"{distribution.host}/{unique_repo}:v1"
    target = f"{distribution.host}/{unique_repo}-copy:retagged"
    skopeo.push(oci_image, source)

    docker.pull(source)
    docker.tag(source, target)
    pushed = docker.push(target)

    assert "retagged: digest: sha256:" in pushed.stdout
    # docker recompresses layers on push, so compare what survives that: the uncompressed layer digests.
    config = skopeo.inspect(target, config=True)
    assert config["rootfs"]["diff_ids"] == oci_image.diff_ids
    assert config["architecture"] == local_platform()[1]
    assert f"{distribution.host}/{unique_repo}-copy@" in " ".join(docker.repo_digests(target))


def test_skopeo_copies_back_into_an_oci_layout(skopeo: Skopeo, distribution: Distribution, oci_image: ImageInfo,
                                               unique_repo: str, tmp_path: Path) -> None:
    skopeo.push(oci_image, f"{distribution.host}/{unique_repo}:v1")

    skopeo.pull(f"{distribution.host}/{unique_repo}:v1", tmp_path / "back", "copied", preserve_digests=True)

    descriptor = tagged_descriptor(tmp_path / "back", "copied")
    assert descriptor["digest"] == oci_image.digest
    for layer in oci_image.layers:
        assert blob_path(tmp_path / "back", layer.digest).read_bytes() == \
            blob_path(oci_image.layout, layer.digest).read_bytes()


def test_docker_media_types_round_trip(skopeo: Skopeo, docker: DockerCli, distribution: Distribution,
                                       tmp_path: Path, unique_repo: str) -> None:
    image = build_image(tmp_path / "docker-image", tag="v1", flavor="docker")
    index = build_multiplatform(tmp_path / "docker-list", tag="v1", flavor="docker")
    skopeo.push(image, f"{distribution.host}/{unique_repo}:single")
    skopeo.push(index, f"{distribution.host}/{unique_repo}:list")

    single = manifest_in_registry(distribution, unique_repo, "single", DOCKER_MANIFEST)
    listed = manifest_in_registry(distribution, unique_repo, "list", DOCKER_LIST)
    assert (single.headers["Content-Type"], single.headers["Docker-Content-Digest"]) == \
        (DOCKER_MANIFEST, image.digest)
    assert (listed.headers["Content-Type"], listed.headers["Docker-Content-Digest"]) == (DOCKER_LIST, index.digest)

    docker.pull(f"{distribution.host}/{unique_repo}:list")
    assert docker.inspect(f"{distribution.host}/{unique_repo}:list")["RootFS"]["Layers"] == \
        index.for_platform(*local_platform()).diff_ids


def test_authentication_errors_reach_the_test(skopeo: Skopeo, podman: Podman, containerd: Containerd,
                                              docker: DockerCli, distribution_auth: Distribution,
                                              oci_image: ImageInfo, unique_repo: str) -> None:
    registry = distribution_auth
    reference = f"{registry.host}/{unique_repo}:v1"

    with pytest.raises(CommandFailed) as anonymous:
        skopeo.push(oci_image, reference)
    assert "unauthorized" in anonymous.value.output.lower() or "authentication required" in anonymous.value.output

    skopeo.push(oci_image, reference, creds=registry.creds("alice"))

    with pytest.raises(CommandFailed) as wrong:
        docker.login(registry.host, "alice", "not-her-password")
    assert "unauthorized" in wrong.value.output.lower()
    docker.login(registry.host, "alice", registry.users["alice"])
    assert registry.host in json.loads(docker.config_json.read_text())["auths"]
    docker.pull(reference)

    with pytest.raises(CommandFailed) as ctr_anonymous:
        containerd.pull(reference)
    assert "401" in ctr_anonymous.value.output or "unauthorized" in ctr_anonymous.value.output.lower()
    containerd.pull(reference, user=registry.creds("bob"))

    assert not podman.pull(reference, check=False).ok
    podman.pull(reference, creds=registry.creds("bob"))
    podman.login(registry.host, "bob", registry.users["bob"])
    try:
        podman.pull(reference)
    finally:
        podman.logout(registry.host)

    skopeo.login(registry.host, "alice", registry.users["alice"])
    try:
        assert skopeo.inspect(reference)["Digest"] == oci_image.digest
    finally:
        skopeo.logout(registry.host)
    assert not skopeo.inspect(reference, check=False).ok


def test_managed_process_is_stopped_by_pid(tmp_path: Path) -> None:
    port = free_port()
    server = ManagedProcess(["python3", "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                            log_path=tmp_path / "http.log")
    with server:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/", timeout=1).status_code == 200, 20,
                   "python http.server", process=server)
        pid = server.pid
    assert not server.alive()
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_a_missing_tool_names_its_debian_package() -> None:
    with pytest.raises(ToolMissing, match="apt-get install -y moorage-no-such-package"):
        require_tool("moorage-no-such-binary", "moorage-no-such-package")


def test_tls_trust_options_reach_the_clients(tmp_path_factory: pytest.TempPathFactory, skopeo: Skopeo,
                                             podman: Podman, containerd: Containerd, oci_image: ImageInfo) -> None:
    tls = make_tls_files(tmp_path_factory.mktemp("tls"), ips=["127.0.0.1"])
    registry = Distribution(tmp_path_factory.mktemp("distribution-tls"), tls=(tls.certificate, tls.key))
    trusted = tmp_path_factory.mktemp("certs.d")
    (trusted / "ca.crt").write_bytes(tls.ca_pem)
    hosts_dir = tmp_path_factory.mktemp("hosts")
    registry.start()
    try:
        reference = f"{registry.host}/tls/image:v1"
        untrusted = skopeo.push(oci_image, reference, tls_verify=True, check=False)
        assert "certificate signed by unknown authority" in untrusted.output
        skopeo.push(oci_image, reference, tls_verify=True, cert_dir=trusted)

        podman.pull(reference, tls_verify=True, cert_dir=trusted)

        # ctr speaks plain HTTP to any loopback host unless a hosts.toml says "https": so TLS needs one.
        write_hosts_toml(hosts_dir, registry.host)
        failed = containerd.pull(reference, plain_http=False, hosts_dir=hosts_dir, check=False)
        assert "x509" in failed.output
        write_hosts_toml(hosts_dir, registry.host, ca=tls.ca)
        containerd.pull(reference, plain_http=False, hosts_dir=hosts_dir)
        assert containerd.images()[reference] == oci_image.digest
    finally:
        registry.stop()
