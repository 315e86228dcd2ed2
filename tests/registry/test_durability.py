"""What must survive: an upload across a server restart, and many clients pushing the same things."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.registry.conftest import OCI_MANIFEST, digest_of, image_manifest
from tests.support.moorage import MoorageServer


@pytest.fixture
def own_server(tmp_path: Path) -> MoorageServer:
    server = MoorageServer(tmp_path / "data", workers=2)
    server.start()
    yield server
    server.stop()


def test_upload_continues_after_a_server_restart(own_server: MoorageServer) -> None:
    repo = own_server.project("library") + "/restart"
    data = os.urandom(3 * 1024 * 1024)
    with own_server.client() as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        first = client.patch(location, content=data[:2_000_000], headers={"Content-Range": "0-1999999"})
        assert first.status_code == 202

    own_server.restart()

    with own_server.client() as client:
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["Range"] == "0-1999999"
        rest = client.patch(location, content=data[2_000_000:],
                            headers={"Content-Range": f"2000000-{len(data) - 1}"})
        assert rest.status_code == 202
        done = client.put(location, params={"digest": digest_of(data)})
        assert done.status_code == 201, done.text
        assert client.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data
    # The running hash was kept with the session: nothing had to be read back and hashed again.
    assert "hashing its first" not in own_server.log()


def test_chunks_on_fresh_connections_continue_the_hash_on_any_worker(own_server: MoorageServer) -> None:
    repo = own_server.project("library") + "/any-worker"
    data = os.urandom(8 * 1024 * 1024)
    chunk = 512 * 1024
    with own_server.client() as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    for start in range(0, len(data), chunk):
        with own_server.client() as client:  # a new connection: any of the two workers may take it
            response = client.patch(location, content=data[start:start + chunk],
                                    headers={"Content-Range": f"{start}-{start + chunk - 1}"})
            assert response.status_code == 202, response.text
    with own_server.client() as client:
        assert client.put(location, params={"digest": digest_of(data)}).status_code == 201
        assert client.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data
    assert "hashing its first" not in own_server.log()


def test_no_partial_blob_is_ever_visible(own_server: MoorageServer) -> None:
    """A half-sent chunk leaves the blob absent and the session at its last acknowledged byte."""
    repo = own_server.project("library") + "/partial"
    data = os.urandom(1_000_000)
    with own_server.client() as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        client.patch(location, content=data[:500_000], headers={"Content-Range": "0-499999"})

        def broken_body():
            yield data[500_000:700_000]
            raise ConnectionAbortedError("client went away mid-chunk")

        with pytest.raises(ConnectionAbortedError):
            client.patch(location, content=broken_body())
        assert client.get(location).headers["Range"] == "0-499999"
        assert client.head(f"/v2/{repo}/blobs/{digest_of(data)}").status_code == 404
        client.patch(location, content=data[500_000:], headers={"Content-Range": f"500000-{len(data) - 1}"})
        assert client.put(location, params={"digest": digest_of(data)}).status_code == 201
        assert client.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data


def test_a_client_gone_after_megabytes_leaves_nothing_half_written(own_server: MoorageServer) -> None:
    """Cut off while several batches of a big chunk are being written and hashed: the session stays at
    its last acknowledged byte, a retry from there completes, and a cut-off monolithic push leaves no file."""
    repo = own_server.project("library") + "/cut-off"
    data = os.urandom(12 * 1024 * 1024)
    first = 1024 * 1024

    def broken_body(start: int, stop: int):
        for offset in range(start, stop, 256 * 1024):
            yield data[offset:offset + 256 * 1024]
        raise ConnectionAbortedError("client went away mid-chunk")

    with own_server.client() as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        client.patch(location, content=data[:first], headers={"Content-Range": f"0-{first - 1}"})
        with pytest.raises(ConnectionAbortedError):
            client.patch(location, content=broken_body(first, 9 * 1024 * 1024))
        assert client.get(location).headers["Range"] == f"0-{first - 1}"
        client.patch(location, content=data[first:], headers={"Content-Range": f"{first}-{len(data) - 1}"})
        assert client.put(location, params={"digest": digest_of(data)}).status_code == 201
        assert client.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data

        other = os.urandom(len(data))
        with pytest.raises(ConnectionAbortedError):
            client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest_of(other)},
                        content=broken_body(0, 9 * 1024 * 1024))
    with own_server.client() as client:
        assert client.head(f"/v2/{repo}/blobs/{digest_of(other)}").status_code == 404
    # The server notices the cut-off on its own time; give it a moment to discard the file.
    deadline = time.monotonic() + 10
    while list((own_server.data_dir / "uploads").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list((own_server.data_dir / "uploads").iterdir()) == []


def test_two_requests_writing_one_session_at_once_cannot_mix_their_bytes(own_server: MoorageServer) -> None:
    """Same start offset, different bytes, at the same moment (a retry racing the attempt it replaces):
    one is taken, the other is told where the upload now stands, and the blob is exactly the winner's."""
    repo = own_server.project("library") + "/racing-chunks"
    first, second = os.urandom(256 * 1024), os.urandom(256 * 1024)
    with own_server.client() as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]

    def send(body: bytes) -> tuple[int, str]:
        with own_server.client() as client:
            response = client.patch(location, content=body, headers={"Content-Range": f"0-{len(body) - 1}"})
            return response.status_code, response.headers.get("Range", "")

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(send, (first, second)))
    assert sorted(status for status, _ in results) == [202, 416]
    assert {held for _, held in results} == {f"0-{len(first) - 1}"}
    winner = first if results[0][0] == 202 else second
    with own_server.client() as client:
        assert client.put(location, params={"digest": digest_of(winner)}).status_code == 201
        assert client.get(f"/v2/{repo}/blobs/{digest_of(winner)}").content == winner


def test_concurrent_pushes_of_the_same_layers_and_tag_end_consistent(own_server: MoorageServer) -> None:
    repo = own_server.project("library") + "/race"
    layer = os.urandom(2 * 1024 * 1024)
    config = b'{"os":"linux","architecture":"amd64"}'

    def push(i: int) -> tuple[int, str]:
        with own_server.client() as client:
            for blob in (config, layer):
                location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
                response = client.put(location, params={"digest": digest_of(blob)}, content=blob)
                assert response.status_code == 201, response.text
            body = json.dumps(image_manifest(config, [layer], annotations={"pusher": str(i)})).encode()
            response = client.put(f"/v2/{repo}/manifests/latest", content=body,
                                  headers={"Content-Type": OCI_MANIFEST})
            return response.status_code, digest_of(body)

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(push, range(32)))
    assert {status for status, _ in results} == {201}

    with own_server.client() as client:
        latest = client.head(f"/v2/{repo}/manifests/latest").headers["Docker-Content-Digest"]
        assert latest in {digest for _, digest in results}
        assert client.get(f"/v2/{repo}/blobs/{digest_of(layer)}").content == layer
        assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["latest"]
    # Stored once, whatever the number of pushers.
    stored = list((own_server.data_dir / "blobs" / "sha256").rglob(digest_of(layer).split(":")[1]))
    assert len(stored) == 1
    assert list((own_server.data_dir / "uploads").iterdir()) == []
    assert '"status": 500' not in own_server.log()


def test_abandoned_uploads_are_purged_at_start(own_server: MoorageServer) -> None:
    repo = own_server.project("library") + "/abandoned"
    with own_server.client() as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        client.patch(location, content=b"x" * 1000)
    (own_server.data_dir / "uploads" / "orphan-from-a-crash").write_bytes(b"half a blob")

    own_server.env["MOORAGE_UPLOAD_TTL_HOURS"] = "0"
    own_server.restart()

    with own_server.client() as client:
        assert client.get(location).status_code == 404
    assert list((own_server.data_dir / "uploads").iterdir()) == []
    assert "removed 2 upload(s)" in own_server.log()
