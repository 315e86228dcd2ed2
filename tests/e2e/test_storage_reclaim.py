"""Disk space comes back: delete an image, run garbage collection, and only what nothing references is gone,
while pushes and pulls go on. The grace period is 0 here, so the leases alone keep pushes safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.harbor import api
from tests.support.clients import Skopeo
from tests.support.databases import own_server
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_blob

LEASE_SECONDS = 6


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MoorageServer]:
    """A registry of its own, on each metadata store: on PostgreSQL, deciding a deletion takes a lock per digest
    that a push of the same digest waits on."""
    yield from own_server(request, tmp_path / "data", {"MOORAGE_GC_GRACE_MINUTES": "0",
                                                       "MOORAGE_GC_LEASE_MINUTES": str(LEASE_SECONDS / 60)})


def gc(server: MoorageServer, *options: str) -> dict:
    """``moorage gc`` run as an operator would, beside the serving registry."""
    result = subprocess.run([sys.executable, "-m", "moorage.cli.main", "gc", "--data-dir", str(server.data_dir),
                             "--json", *options], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **server.env})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def blob_file(server: MoorageServer, digest: str) -> Path:
    algorithm, _, hexpart = digest.partition(":")
    return server.data_dir / "blobs" / algorithm / hexpart[:2] / hexpart


def push(client: httpx.Client, repo: str, tag: str, layers: list[bytes]) -> tuple[str, list[str]]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag, "nonce": os.urandom(8).hex()}).encode()
    digests = [push_blob(client, repo, blob) for blob in (config, *layers)]
    body = json.dumps(image_manifest(config, layers)).encode()
    r = client.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert r.status_code == 201, r.text
    return digest_of(body), digests


def test_deleted_images_free_their_layers_and_a_shared_layer_survives(server: MoorageServer,
                                                                      skopeo: Skopeo, tmp_path: Path) -> None:
    project = server.project("reclaim")
    shared = os.urandom(300_000)
    with server.client() as client:
        old, old_blobs = push(client, f"{project}/app", "old", [os.urandom(500_000), shared])
        _, new_blobs = push(client, f"{project}/app", "new", [os.urandom(400_000), shared])
    time.sleep(LEASE_SECONDS + 1)  # the links made by these pushes are past their lease
    with api(server) as admin:
        assert admin.delete(f"/projects/{project}/repositories/app/artifacts/{old}").status_code == 200
    unique_to_old = [d for d in old_blobs if d not in new_blobs]
    kept = sorted(set(new_blobs))
    freed_bytes = sum(blob_file(server, d).stat().st_size for d in unique_to_old)
    planned = gc(server, "--dry-run")
    assert planned["dry_run"] and planned["blobs"] == len(unique_to_old) and planned["bytes"] == freed_bytes
    assert all(blob_file(server, d).exists() for d in unique_to_old), "a dry run deletes nothing"
    done = gc(server)
    # The real run deletes exactly what the dry run listed.
    assert (done["blobs"], done["bytes"]) == (planned["blobs"], planned["bytes"])
    assert [line.replace("would delete", "delete") for line in planned["log"] if "delete blob" in line] == \
        [line for line in done["log"] if "delete blob" in line]
    assert not any(blob_file(server, d).exists() for d in unique_to_old)
    assert all(blob_file(server, d).exists() for d in kept)
    # The surviving image pulls intact with a real client (skopeo verifies every digest).
    result = skopeo.pull(f"{server.host}/{project}/app:new", tmp_path / "pulled", "new",
                         creds=f"admin:{ADMIN_PASSWORD}")
    assert result.returncode == 0, result.stderr
    assert gc(server)["blobs"] == 0, "nothing is left to collect"


def test_pushes_and_pulls_never_fail_while_gc_runs_in_a_tight_loop(server: MoorageServer) -> None:
    project = server.project("soak")
    pushed: dict[str, tuple[str, list[tuple[str, bytes]]]] = {}
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    shared = os.urandom(100_000)

    def pusher(worker: int) -> None:
        with server.client() as client:
            round_ = 0
            while not stop.is_set():
                round_ += 1
                tag = f"w{worker}-{round_}"
                layers = [os.urandom(50_000), shared]
                try:
                    config = json.dumps({"tag": tag, "nonce": os.urandom(8).hex()}).encode()
                    for blob in (config, *layers):
                        # A client asks first, and skips what the registry says it has (the shared layer).
                        if client.head(f"/v2/{project}/app/blobs/{digest_of(blob)}").status_code != 200:
                            push_blob(client, f"{project}/app", blob)
                    body = json.dumps(image_manifest(config, layers)).encode()
                    r = client.put(f"/v2/{project}/app/manifests/{tag}", content=body,
                                   headers={"Content-Type": OCI_MANIFEST})
                    if r.status_code != 201:
                        failures.append(f"push {tag}: {r.status_code} {r.text}")
                        continue
                    with lock:
                        pushed[tag] = (digest_of(body), [(digest_of(b), b) for b in (config, *layers)])
                    if round_ % 3 == 0:  # make garbage: every third image is deleted again
                        r = client.delete(f"/v2/{project}/app/manifests/{digest_of(body)}")
                        assert r.status_code == 202, r.text
                        with lock:
                            del pushed[tag]
                except (httpx.HTTPError, AssertionError) as exc:
                    failures.append(f"push {tag}: {exc}")

    def puller() -> None:
        with server.client() as client:
            while not stop.is_set():
                with lock:
                    choices = list(pushed.items())
                for tag, (digest, blobs) in choices[-5:]:
                    r = client.get(f"/v2/{project}/app/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
                    if r.status_code == 404:
                        continue  # deleted meanwhile by its pusher
                    if r.status_code != 200 or digest_of(r.content) != digest:
                        failures.append(f"pull {tag}: {r.status_code}")
                        continue
                    for blob_digest, data in blobs:
                        got = client.get(f"/v2/{project}/app/blobs/{blob_digest}")
                        with lock:
                            still_tagged = tag in pushed
                        if (got.status_code != 200 or got.content != data) and still_tagged:
                            failures.append(f"pull {tag} blob {blob_digest}: {got.status_code}")

    threads = [threading.Thread(target=pusher, args=(i,)) for i in range(3)] + \
        [threading.Thread(target=puller) for _ in range(2)]
    for thread in threads:
        thread.start()
    collected = 0
    deadline = time.monotonic() + 25
    try:
        while time.monotonic() < deadline:
            collected += gc(server, "--delete-untagged")["blobs"]
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert failures == []
    assert collected > 0, "the soak made garbage, and garbage collection found some"
    # Every acknowledged tag still pulls, byte for byte.
    with server.client() as client:
        for tag, (digest, blobs) in pushed.items():
            r = client.get(f"/v2/{project}/app/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert r.status_code == 200 and digest_of(r.content) == digest, tag
            for blob_digest, data in blobs:
                assert client.get(f"/v2/{project}/app/blobs/{blob_digest}").content == data
