"""pytest plugin: real clients and daemons for end-to-end tests.

Enable it from the root conftest with ``pytest_plugins = ["tests.support.fixtures"]``.

Session fixtures (one private instance per run, stopped by PID at the end): ``containerd``, ``dockerd``
(which reuses that containerd), ``podman``, ``skopeo``, ``distribution`` (CNCF distribution without auth),
``distribution_auth`` (with htpasswd users, see ``DISTRIBUTION_USERS``) and ``postgres`` (a PostgreSQL cluster).
Function fixtures: ``docker`` (a docker CLI on the session daemon with its own, empty credential store),
``oci_image`` and ``oci_index`` (fresh, unique image layouts under tmp_path), ``unique_repo`` (a repository
name no other test uses). A missing tool fails the test with the Debian package to install; it is never skipped.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest

from tests.support.clients import Containerd, Distribution, DockerCli, Dockerd, Podman, Skopeo
from tests.support.images import ImageInfo, IndexInfo, build_image, build_multiplatform
from tests.support.postgres import Postgres
from tests.support.procs import or_fail, running
from tests.support.s3 import SeaweedFS

DISTRIBUTION_USERS = {"alice": "alice-" + secrets.token_hex(8), "bob": "bob-" + secrets.token_hex(8)}

@pytest.fixture(scope="session")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    yield from running(lambda: Containerd(tmp_path_factory.mktemp("containerd")))


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory, containerd: Containerd) -> Iterator[Dockerd]:
    yield from running(lambda: Dockerd(tmp_path_factory.mktemp("dockerd"), containerd_socket=containerd.socket))


@pytest.fixture
def docker(dockerd: Dockerd, tmp_path_factory: pytest.TempPathFactory) -> DockerCli:
    """The docker CLI with a fresh DOCKER_CONFIG, so one test's ``docker login`` never helps another."""
    return or_fail(lambda: dockerd.cli(tmp_path_factory.mktemp("docker-config")))


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    client = or_fail(lambda: Podman(tmp_path_factory.mktemp("podman")))
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="session")
def skopeo(tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    return or_fail(lambda: Skopeo(tmp_path_factory.mktemp("skopeo")))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    yield from running(lambda: Postgres(tmp_path_factory.mktemp("postgres")))


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """SeaweedFS's S3 gateway on loopback (tests take a bucket each: ``seaweedfs.new_bucket()``)."""
    yield from running(lambda: SeaweedFS(tmp_path_factory.mktemp("seaweedfs")))


@pytest.fixture(scope="session")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    yield from running(lambda: Distribution(tmp_path_factory.mktemp("distribution")))


@pytest.fixture(scope="session")
def distribution_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    """CNCF distribution requiring basic auth for users ``DISTRIBUTION_USERS`` (``.creds("alice")``)."""
    yield from running(lambda: Distribution(tmp_path_factory.mktemp("distribution-auth"), users=DISTRIBUTION_USERS))


@pytest.fixture
def oci_image(tmp_path_factory: pytest.TempPathFactory) -> ImageInfo:
    """A fresh single-platform (this machine's) OCI image with two small layers, tagged ``v1``."""
    return build_image(tmp_path_factory.mktemp("oci-image"), tag="v1", layers=2, layer_size=[2048, 8192])


@pytest.fixture
def oci_index(tmp_path_factory: pytest.TempPathFactory) -> IndexInfo:
    """A fresh OCI image index (this machine's platform first, then another), tagged ``v1``."""
    return build_multiplatform(tmp_path_factory.mktemp("oci-index"), tag="v1")


@pytest.fixture
def unique_repo(request: pytest.FixtureRequest) -> str:
    """A repository name no other test uses: ``e2e/<test-name>-<random>`` (lower case, registry-legal)."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"e2e/{name or 'test'}-{secrets.token_hex(3)}"
