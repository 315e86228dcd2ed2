"""Upload sessions: chunks in order, out of order, progress, cancel, mounts."""

from __future__ import annotations

import os
import uuid

import httpx

from tests.registry.conftest import assert_error, digest_of, push_blob


def start_upload(client: httpx.Client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    assert response.status_code == 202, response.text
    assert response.headers["Range"] == "0-0"
    assert response.headers["Docker-Upload-UUID"]
    return response.headers["Location"]


def send_chunk(client: httpx.Client, location: str, data: bytes, start: int) -> httpx.Response:
    return client.patch(location, content=data, headers={
        "Content-Type": "application/octet-stream",
        "Content-Range": f"{start}-{start + len(data) - 1}",
    })


def test_chunked_upload_reports_progress_and_completes(client: httpx.Client, repo: str) -> None:
    data = os.urandom(300_000)
    location = start_upload(client, repo)
    offset = 0
    for size in (100_000, 150_000):
        response = send_chunk(client, location, data[offset:offset + size], offset)
        assert response.status_code == 202, response.text
        offset += size
        assert response.headers["Range"] == f"0-{offset - 1}"
        location = response.headers["Location"]

    progress = client.get(location)
    assert progress.status_code == 204
    assert progress.headers["Range"] == f"0-{offset - 1}"

    digest = digest_of(data)
    done = client.put(location, params={"digest": digest}, content=data[offset:],
                      headers={"Content-Range": f"{offset}-{len(data) - 1}"})
    assert done.status_code == 201, done.text
    assert done.headers["Docker-Content-Digest"] == digest
    assert done.headers["Location"] == f"/v2/{repo}/blobs/{digest}"
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == data
    # The session is closed once the blob is committed.
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


def test_streamed_patch_without_content_range_like_docker(client: httpx.Client, repo: str) -> None:
    data = os.urandom(50_000)
    location = start_upload(client, repo)
    response = client.patch(location, content=iter([data[:20_000], data[20_000:]]))
    assert response.status_code == 202
    assert response.headers["Range"] == f"0-{len(data) - 1}"
    done = client.put(response.headers["Location"], params={"digest": digest_of(data)})
    assert done.status_code == 201, done.text


def test_out_of_order_chunk_gets_416_with_current_range(client: httpx.Client, repo: str) -> None:
    data = os.urandom(20_000)
    location = start_upload(client, repo)
    assert send_chunk(client, location, data[:10_000], 0).status_code == 202

    skipped = send_chunk(client, location, data[15_000:], 15_000)
    assert_error(skipped, 416, "BLOB_UPLOAD_INVALID")
    assert skipped.headers["Range"] == "0-9999"
    assert skipped.headers["Location"]
    repeated = send_chunk(client, location, data[:10_000], 0)
    assert repeated.status_code == 416

    # The upload is intact and continues from where the registry says it is.
    assert send_chunk(client, location, data[10_000:], 10_000).status_code == 202
    assert client.put(location, params={"digest": digest_of(data)}).status_code == 201


def test_content_range_and_length_must_agree(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    response = client.patch(location, content=b"x" * 10, headers={"Content-Range": "0-99"})
    assert_error(response, 400, "SIZE_INVALID")
    response = client.patch(location, content=b"x" * 10, headers={"Content-Range": "garbage"})
    assert_error(response, 400, "BLOB_UPLOAD_INVALID")


def test_closing_with_the_wrong_digest_discards_the_upload(client: httpx.Client, repo: str) -> None:
    data = os.urandom(1000)
    location = start_upload(client, repo)
    send_chunk(client, location, data, 0)
    wrong = digest_of(b"other")
    assert_error(client.put(location, params={"digest": wrong}), 400, "DIGEST_INVALID")
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
    assert_error(client.put(location, params={"digest": digest_of(data)}), 404, "BLOB_UPLOAD_UNKNOWN")


def test_closing_without_digest_is_refused(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    assert_error(client.put(location), 400, "BLOB_UPLOAD_INVALID")


def test_cancelled_upload_is_gone(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    send_chunk(client, location, b"partial", 0)
    assert client.delete(location).status_code == 204
    assert_error(client.get(location), 404, "BLOB_UPLOAD_UNKNOWN")
    assert_error(send_chunk(client, location, b"more", 7), 404, "BLOB_UPLOAD_UNKNOWN")


def test_unknown_upload_id(client: httpx.Client, repo: str) -> None:
    assert_error(client.get(f"/v2/{repo}/blobs/uploads/does-not-exist"), 404, "BLOB_UPLOAD_UNKNOWN")


def test_an_upload_belongs_to_its_repository(client: httpx.Client, repo: str) -> None:
    location = start_upload(client, repo)
    elsewhere = location.replace(f"/v2/{repo}/", f"/v2/{repo}-other/")
    assert_error(client.get(elsewhere), 404, "BLOB_UPLOAD_UNKNOWN")


def test_cross_repository_mount(client: httpx.Client, repo: str) -> None:
    data = os.urandom(4096)
    digest = push_blob(client, repo, data)
    target = f"{repo}-mounted"
    mounted = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": repo})
    assert mounted.status_code == 201, mounted.text
    assert mounted.headers["Location"] == f"/v2/{target}/blobs/{digest}"
    assert mounted.headers["Docker-Content-Digest"] == digest
    assert client.get(f"/v2/{target}/blobs/{digest}").content == data


def test_mount_of_a_blob_the_source_lacks_falls_back_to_an_upload(client: httpx.Client, repo: str) -> None:
    missing = digest_of(os.urandom(16))
    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"mount": missing, "from": f"{repo}-none"})
    assert response.status_code == 202
    assert "/blobs/uploads/" in response.headers["Location"]


def test_content_range_numbers_of_thousands_of_digits(client: httpx.Client, repo: str) -> None:
    """Found by the fuzzer: int() of a 5,000-digit Content-Range number tripped Python's conversion limit."""
    location = start_upload(client, repo)
    nines = "9" * 5000
    assert_error(client.patch(location, content=b"x", headers={"Content-Range": f"{nines}-{nines}"}), 416,
                 "BLOB_UPLOAD_INVALID")
    assert_error(client.patch(location, content=b"x" * 10, headers={"Content-Range": f"0-{nines}"}), 400,
                 "SIZE_INVALID")
    # Nothing was taken: the upload still starts at byte 0.
    assert send_chunk(client, location, b"data", 0).status_code == 202
    assert client.put(location, params={"digest": digest_of(b"data")}).status_code == 201


def test_upload_ids_never_handed_out_are_unknown(client: httpx.Client, repo: str) -> None:
    """Found by the fuzzer: PostgreSQL refuses text holding NUL, so such an id was a 500 there; and an id that
    is a newline matched the start-upload route (Starlette's "$" matches before a final newline), a 405."""
    for upload_id in ("%00", "a%00b", "%0A", str(uuid.uuid4()).upper(), "x" * 300):
        for method in ("GET", "PATCH", "DELETE"):
            assert_error(client.request(method, f"/v2/{repo}/blobs/uploads/{upload_id}"), 404, "BLOB_UPLOAD_UNKNOWN")


def test_a_mount_from_what_is_no_repository_name_opens_an_upload(client: httpx.Client, repo: str) -> None:
    """Found by the fuzzer: a ``from`` holding NUL reached the grants query, a 500 on PostgreSQL."""
    digest = push_blob(client, repo, os.urandom(64))
    for source in ("\x00", f"{repo}\x00", "UPPER/case", "../" + repo):
        response = client.post(f"/v2/{repo}-target/blobs/uploads/", params={"mount": digest, "from": source})
        assert response.status_code == 202, response.text
        assert client.delete(response.headers["Location"]).status_code == 204
