"""An operator keeps the blobs in an S3 bucket (SeaweedFS's S3 gateway here) and the metadata in PostgreSQL:
real clients push and pull through it, streamed by the registry or redirected to the bucket, chunked pushes
move between replicas and survive a restart, abandoned uploads and unreferenced blobs leave the bucket."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.clients import Containerd, DockerCli, Skopeo
from tests.support.images import build_image
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_blob
from tests.support.postgres import Postgres
from tests.support.procs import wait_until
from tests.support.s3 import SeaweedFS

CREDS = f"admin:{ADMIN_PASSWORD}"
MiB = 1024 * 1024


def blob_key(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart[:2]}/{hexpart}"


class S3Registry:
    """One or more replicas on one PostgreSQL database and one bucket."""

    def __init__(self, tmp_path: Path, postgres: Postgres, seaweedfs: SeaweedFS, replicas: int = 1,
                 **env: str) -> None:
        self.bucket = seaweedfs.new_bucket()
        self.seaweedfs = seaweedfs
        url = postgres.new_database(f"s3_{secrets.token_hex(5)}")
        self.env = {**seaweedfs.settings_env(self.bucket), "MOORAGE_DATABASE_URL": url,
                    "MOORAGE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(), **env}
        # Each replica its own data directory: nothing but PostgreSQL and the bucket is shared.
        self.servers = [MoorageServer(tmp_path / f"replica-{i}", env=self.env, log_path=tmp_path / f"replica-{i}.log")
                        for i in range(replicas)]

    def start(self) -> S3Registry:
        with ThreadPoolExecutor(len(self.servers)) as pool:
            list(pool.map(MoorageServer.start, self.servers))
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def keys(self, prefix: str = "") -> list[str]:
        return self.seaweedfs.keys(self.bucket, prefix)


@pytest.fixture
def s3_registry(tmp_path: Path, postgres: Postgres, seaweedfs: SeaweedFS) -> Iterator[S3Registry]:
    registry = S3Registry(tmp_path, postgres, seaweedfs).start()
    try:
        yield registry
    finally:
        registry.stop()


def token_client(server: MoorageServer, repo: str) -> httpx.Client:
    r = httpx.get(f"{server.url}/service/token", params={"service": "moorage-registry",
                                                         "scope": f"repository:{repo}:pull,push,delete"},
                  auth=("admin", ADMIN_PASSWORD))
    assert r.status_code == 200, r.text
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {r.json()['token']}"}, timeout=60)


def test_real_clients_push_and_pull_through_the_bucket(
        s3_registry: S3Registry, skopeo: Skopeo, containerd: Containerd, docker: DockerCli, tmp_path: Path) -> None:
    server = s3_registry.servers[0]
    project = server.project("s3")
    # A layer of several multipart parts and one smaller than a part.
    image = build_image(tmp_path / "image", layers=2, layer_size=[40 * MiB, 3 * MiB])
    reference = f"{server.host}/{project}/app:v1"
    skopeo.push(image, reference, creds=CREDS)

    stored = s3_registry.keys("blobs/")
    for blob in (image.config, *image.layers):
        assert blob_key(blob.digest) in stored
    # Nothing of the finished uploads is left behind in the bucket.
    assert s3_registry.keys("_uploads/") == []
    assert s3_registry.seaweedfs.multipart_uploads(s3_registry.bucket) == []

    containerd.pull(reference, user=CREDS)
    assert containerd.images()[reference] == image.digest
    assert containerd.is_unpacked(image)
    docker.login(server.host, "admin", ADMIN_PASSWORD)
    docker.pull(reference)
    assert docker.inspect(reference)["RootFS"]["Layers"] == image.diff_ids

    # docker's own push (one PATCH per layer, then PUT) lands in the bucket as well.
    target = f"{server.host}/{project}/by-docker:v1"
    docker.tag(reference, target)
    docker.push(target)
    skopeo.copy(f"docker://{target}", f"oci:{tmp_path / 'back'}:v1", creds=CREDS)
    assert (tmp_path / "back" / "blobs" / "sha256" / image.layers[0].digest.split(":")[1]).stat().st_size == \
        image.layers[0].size

    with token_client(server, f"{project}/app") as client:
        layer = image.layers[0]
        # A range is read from the bucket, not the whole object.
        r = client.get(f"/v2/{project}/app/blobs/{layer.digest}", headers={"Range": "bytes=1000-1999"})
        assert r.status_code == 206, r.text
        assert r.headers["content-range"] == f"bytes 1000-1999/{layer.size}"
        assert len(r.content) == 1000
        full = client.get(f"/v2/{project}/app/blobs/{layer.digest}")
        assert r.content == full.content[1000:2000]
        assert digest_of(full.content) == layer.digest
        head = client.head(f"/v2/{project}/app/blobs/{layer.digest}")
        assert head.status_code == 200 and head.headers["content-length"] == str(layer.size)


def test_redirect_sends_clients_to_the_bucket(tmp_path: Path, postgres: Postgres, seaweedfs: SeaweedFS,
                                              skopeo: Skopeo, containerd: Containerd, docker: DockerCli) -> None:
    registry = S3Registry(tmp_path, postgres, seaweedfs, MOORAGE_S3_REDIRECT="true").start()
    try:
        server = registry.servers[0]
        project = server.project("redirected")
        image = build_image(tmp_path / "image", layers=2, layer_size=[6 * MiB, 4096])
        reference = f"{server.host}/{project}/app:v1"
        skopeo.push(image, reference, creds=CREDS)

        with token_client(server, f"{project}/app") as client:
            r = client.get(f"/v2/{project}/app/blobs/{image.layers[0].digest}")
            assert r.status_code == 307
            location = r.headers["location"]
            assert location.startswith(seaweedfs.endpoint + "/")
            assert "X-Amz-Signature=" in location
            # The presigned URL needs no registry credentials.
            assert digest_of(httpx.get(location).content) == image.layers[0].digest

        containerd.pull(reference, user=CREDS)
        assert containerd.is_unpacked(image)
        docker.login(server.host, "admin", ADMIN_PASSWORD)
        docker.pull(reference)
        assert docker.inspect(reference)["RootFS"]["Layers"] == image.diff_ids
        skopeo.copy(f"docker://{reference}", f"oci:{tmp_path / 'back'}:v1", creds=CREDS)
    finally:
        registry.stop()


def patch(client: httpx.Client, location: str, data: bytes, start: int) -> str:
    r = client.patch(location, content=data, headers={
        "Content-Range": f"{start}-{start + len(data) - 1}", "Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    assert r.headers["range"] == f"0-{start + len(data) - 1}"
    return r.headers["location"]


def test_chunks_of_one_upload_alternate_between_replicas(tmp_path: Path, postgres: Postgres,
                                                         seaweedfs: SeaweedFS) -> None:
    registry = S3Registry(tmp_path, postgres, seaweedfs, replicas=2).start()
    try:
        a, b = registry.servers
        project = a.project("replicas")
        repo = f"{project}/app"
        # Chunks smaller than S3's smallest part, and one that fills several parts, taken in turn.
        layer = os.urandom(37 * MiB + 123)
        cuts = [0, 1 * MiB, 3 * MiB, 4 * MiB + 7, 30 * MiB, 36 * MiB, len(layer)]
        with token_client(a, repo) as on_a, token_client(b, repo) as on_b:
            started = on_a.post(f"/v2/{repo}/blobs/uploads/")
            assert started.status_code == 202, started.text
            location = started.headers["location"]
            for i, client in enumerate([on_b, on_a, on_b, on_a, on_b, on_a]):
                location = patch(client, location, layer[cuts[i]:cuts[i + 1]], cuts[i])
                status = (on_a if client is on_b else on_b).get(location)
                assert status.status_code == 204 and status.headers["range"] == f"0-{cuts[i + 1] - 1}"
            digest = digest_of(layer)
            # Not under its digest before the closing PUT verifies it.
            assert blob_key(digest) not in registry.keys("blobs/")
            done = on_b.put(location, params={"digest": digest})
            assert done.status_code == 201, done.text
            assert blob_key(digest) in registry.keys("blobs/")
            assert hashlib.sha256(on_a.get(f"/v2/{repo}/blobs/{digest}").content).hexdigest() == digest.split(":")[1]

            # A wrong digest is refused and nothing appears under either digest.
            started = on_b.post(f"/v2/{repo}/blobs/uploads/")
            location = patch(on_b, started.headers["location"], b"x" * (6 * MiB), 0)
            wrong = "sha256:" + "0" * 64
            refused = on_a.put(location, params={"digest": wrong})
            assert refused.status_code == 400 and refused.json()["errors"][0]["code"] == "DIGEST_INVALID"
            assert blob_key(wrong) not in registry.keys("blobs/")
            assert blob_key(digest_of(b"x" * (6 * MiB))) not in registry.keys("blobs/")
            assert registry.keys("_uploads/") == []
    finally:
        registry.stop()


def test_an_upload_continues_after_a_restart(s3_registry: S3Registry) -> None:
    server = s3_registry.servers[0]
    repo = f"{server.project('restart')}/app"
    layer = os.urandom(20 * MiB + 5)
    with token_client(server, repo) as client:
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        location = patch(client, started.headers["location"], layer[:18 * MiB], 0)
    server.restart()
    with token_client(server, repo) as client:
        assert client.get(location).headers["range"] == f"0-{18 * MiB - 1}"
        location = patch(client, location, layer[18 * MiB:], 18 * MiB)
        done = client.put(location, params={"digest": digest_of(layer)})
        assert done.status_code == 201, done.text
        assert client.get(f"/v2/{repo}/blobs/{digest_of(layer)}").content == layer


def test_abandoned_uploads_are_purged_with_their_multipart_upload(tmp_path: Path, postgres: Postgres,
                                                                  seaweedfs: SeaweedFS) -> None:
    # Sessions expire after about two seconds, and the purge looks every second.
    registry = S3Registry(tmp_path, postgres, seaweedfs, MOORAGE_UPLOAD_TTL_HOURS=str(2 / 3600),
                          MOORAGE_UPLOAD_PURGE_INTERVAL_MINUTES=str(1 / 60)).start()
    try:
        server = registry.servers[0]
        repo = f"{server.project('abandoned')}/app"
        with token_client(server, repo) as client:
            started = client.post(f"/v2/{repo}/blobs/uploads/")
            location = patch(client, started.headers["location"], os.urandom(17 * MiB), 0)
            assert seaweedfs.multipart_uploads(registry.bucket) != []
            assert registry.keys("_uploads/") != []  # the part-sized remainder waits as a tail object
            wait_until(lambda: client.get(location).status_code == 404, timeout=60, what="the upload to expire")
            wait_until(lambda: not seaweedfs.multipart_uploads(registry.bucket) and not registry.keys("_uploads/"),
                       timeout=60, what="the multipart upload to be aborted")
    finally:
        registry.stop()


def test_garbage_collection_deletes_from_the_bucket(tmp_path: Path, postgres: Postgres,
                                                    seaweedfs: SeaweedFS) -> None:
    registry = S3Registry(tmp_path, postgres, seaweedfs, MOORAGE_GC_GRACE_MINUTES="0",
                          MOORAGE_GC_LEASE_MINUTES=str(1 / 60)).start()
    try:
        server = registry.servers[0]
        repo = f"{server.project('gc')}/app"
        with token_client(server, repo) as client:
            config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
            kept, dropped = os.urandom(6 * MiB), os.urandom(2 * MiB)
            for blob in (config, kept, dropped):
                push_blob(client, repo, blob)
            for tag, layers in (("keep", [kept]), ("drop", [dropped])):
                manifest = json.dumps(image_manifest(config, layers)).encode()
                r = client.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
                assert r.status_code == 201, r.text
            dropped_manifest = digest_of(json.dumps(image_manifest(config, [dropped])).encode())
            assert client.delete(f"/v2/{repo}/manifests/{dropped_manifest}").status_code == 202

            def collect() -> dict:
                result = subprocess.run(
                    [sys.executable, "-m", "moorage.cli.main", "gc", "--data-dir", str(server.data_dir), "--json"],
                    capture_output=True, text=True, timeout=120, env={**os.environ, **registry.env})
                assert result.returncode == 0, result.stderr
                return json.loads(result.stdout)  # type: ignore[no-any-return]

            wait_until(lambda: blob_key(digest_of(dropped)) not in (collect() and registry.keys("blobs/")),
                       timeout=60, what="garbage collection to delete the unreferenced layer")
            stored = registry.keys("blobs/")
            assert blob_key(digest_of(kept)) in stored and blob_key(digest_of(config)) in stored
            assert client.get(f"/v2/{repo}/blobs/{digest_of(kept)}").content == kept
    finally:
        registry.stop()
