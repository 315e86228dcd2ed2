"""Blobs: monolithic push, fetch with digest and size headers, ranges, deletes, bad digests."""

from __future__ import annotations

import hashlib
import os
import time

import httpx

from moorage.blobs.stream import LONE_CHUNK
from tests.registry.conftest import assert_error, digest_of, push_blob
from tests.support.moorage import MoorageServer


def test_pushed_blob_is_served_with_digest_length_and_ranges(client: httpx.Client, repo: str) -> None:
    data = os.urandom(100_000)
    digest = push_blob(client, repo, data)

    head = client.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == digest
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Accept-Ranges"] == "bytes"

    get = client.get(f"/v2/{repo}/blobs/{digest}")
    assert get.status_code == 200 and get.content == data
    assert get.headers["Docker-Content-Digest"] == digest

    partial = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=10-19"})
    assert partial.status_code == 206
    assert partial.content == data[10:20]
    assert partial.headers["Content-Range"] == f"bytes 10-19/{len(data)}"

    tail = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=99990-"})
    assert tail.status_code == 206 and tail.content == data[99990:]


def test_ranges_as_the_conformance_suite_asks(client: httpx.Client, repo: str) -> None:
    data = os.urandom(2048)
    url = f"/v2/{repo}/blobs/{push_blob(client, repo, data)}"
    served = {"bytes=500-1499": data[500:1500], "bytes=500-": data[500:], "bytes=-500": data[-500:],
              "bytes=2000-5000": data[2000:]}
    for header, expected in served.items():
        response = client.get(url, headers={"Range": header})
        assert response.status_code == 206 and response.content == expected, header
        assert response.headers["Content-Length"] == str(len(expected))
    # A range that starts past the end, or ends before it starts: 416 saying how long the blob is.
    for header in ("bytes=500-0", "bytes=5000-10000", "bytes=2048-"):
        response = client.get(url, headers={"Range": header})
        assert response.status_code == 416, (header, response.status_code)
        assert response.headers["Content-Range"] == "bytes */2048"
    # What is not one byte range is ignored, as RFC 9110 allows: the whole blob.
    for header in ("lines=1-2", "bytes=abc-def", "bytes=0-9,20-29", "bytes=-"):
        response = client.get(url, headers={"Range": header})
        assert response.status_code == 200 and response.content == data, header


def test_a_blob_of_many_chunks_arrives_whole_and_a_client_hanging_up_midway_harms_nothing(
        moorage: MoorageServer, client: httpx.Client, repo: str) -> None:
    data = os.urandom(16 * LONE_CHUNK + 1)
    digest = push_blob(client, repo, data)
    with client.stream("GET", f"/v2/{repo}/blobs/{digest}") as response:
        assert response.headers["Content-Length"] == str(len(data))
        received = b"".join(response.iter_bytes())
    assert digest_of(received) == digest

    with moorage.client() as quitter, quitter.stream("GET", f"/v2/{repo}/blobs/{digest}") as response:
        next(response.iter_raw(LONE_CHUNK))
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data
    assert moorage.server_errors() == []


def test_a_client_hanging_up_midway_stops_the_server_reading_that_blob(
        moorage: MoorageServer, client: httpx.Client, repo: str) -> None:
    block, blocks = os.urandom(1024 * 1024), 256
    hasher = hashlib.sha256()
    for _ in range(blocks):
        hasher.update(block)
    digest = f"sha256:{hasher.hexdigest()}"
    size = len(block) * blocks
    pushed = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest},
                         content=(block for _ in range(blocks)),
                         headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)})
    assert pushed.status_code == 201, pushed.text

    before = moorage.bytes_read()
    with moorage.client() as quitter, quitter.stream("GET", f"/v2/{repo}/blobs/{digest}") as response:
        next(response.iter_raw(LONE_CHUNK))
    time.sleep(1)  # reading the rest of the cached blob would take the server a few tens of milliseconds
    # What was on its way before the hang-up was noticed (socket buffers, queues), not the rest of the blob.
    assert moorage.bytes_read() - before < size // 2
    assert moorage.server_errors() == []


def test_a_blob_is_visible_only_in_repositories_that_link_it(client: httpx.Client, repo: str) -> None:
    digest = push_blob(client, repo, os.urandom(512))
    assert_error(client.get(f"/v2/{repo}-other/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert client.head(f"/v2/{repo}-other/blobs/{digest}").status_code == 404


def test_deleted_blob_is_gone_from_that_repository(client: httpx.Client, repo: str) -> None:
    digest = push_blob(client, repo, os.urandom(512))
    assert client.delete(f"/v2/{repo}/blobs/{digest}").status_code == 202
    assert_error(client.get(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}/blobs/{digest}"), 404, "BLOB_UNKNOWN")


def test_monolithic_push_with_wrong_digest_is_refused_and_leaves_nothing(client: httpx.Client,
                                                                        repo: str) -> None:
    data = os.urandom(1024)
    wrong = digest_of(b"something else")
    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": wrong}, content=data)
    assert_error(response, 400, "DIGEST_INVALID")
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{digest_of(data)}").status_code == 404


def test_sha512_digests_are_verified_too(client: httpx.Client, repo: str) -> None:
    data = os.urandom(4096)
    digest = digest_of(data, "sha512")
    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert response.status_code == 201, response.text
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_malformed_and_unsupported_digests_say_what_is_wrong(client: httpx.Client, repo: str) -> None:
    for bad in ("sha256:xyz", "md5:" + "0" * 32, "sha256:" + "A" * 64, "nonsense"):
        error = assert_error(client.get(f"/v2/{repo}/blobs/{bad}"), 400, "DIGEST_INVALID")
        assert "digest" in error["message"]


def test_bad_repository_names_are_refused(client: httpx.Client) -> None:
    for bad in ("library/UPPER", "library/-dash", "library//double", "library/" + "a" * 300):
        response = client.post(f"/v2/{bad}/blobs/uploads/")
        assert_error(response, 400, "NAME_INVALID")


def test_range_numbers_of_thousands_of_digits_are_read_not_a_500(client: httpx.Client, repo: str) -> None:
    """Found by the fuzzer: int() of a 5,000-digit Range number trips Python's conversion limit (a 500), and
    FileResponse, parsing the header again, answered what it could not read with a plain-text 400."""
    data = os.urandom(1000)
    url = f"/v2/{repo}/blobs/{push_blob(client, repo, data)}"
    nines = "9" * 5000
    for header, expected in ((f"bytes=0-{nines}", data), (f"bytes=-{nines}", data),
                             (f"bytes={'0' * 5000}7-9", data[7:10])):
        response = client.get(url, headers={"Range": header})
        assert response.status_code == 206 and response.content == expected, (header[:20], response.text[:200])
    for header in (f"bytes={nines}-", f"bytes={nines}-{nines}"):
        response = client.get(url, headers={"Range": header})
        assert_error(response, 416, "BLOB_UNKNOWN")
        assert response.headers["Content-Range"] == "bytes */1000"


def test_a_name_holding_a_newline_is_name_invalid(client: httpx.Client) -> None:
    """Found by the fuzzer: the route's ``.*`` stopped at a newline, so such a name got 404 "not an endpoint"."""
    for path in ("/v2/library/a%0Ab/blobs/uploads/", "/v2/%0A/tags/list", "/v2/library/x%0A/manifests/latest",
                 f"/v2/library/%0Ax/blobs/{digest_of(b'x')}"):
        method = "POST" if path.endswith("/uploads/") else "GET"
        assert_error(client.request(method, path), 400, "NAME_INVALID")
