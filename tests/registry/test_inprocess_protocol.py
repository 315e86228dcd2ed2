"""The distribution protocol in the fast tier: the app in this process (tests.support.inprocess), the same
hand-written client steps as the real-server suites, no socket and no process. The real-server suites beside
this module prove the same over HTTP with every metadata store; these run in seconds."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable, Iterator

import httpx
import jwt
import pytest

from tests.support.inprocess import BASE_URL, InProcessMoorage
from tests.support.oci import OCI_MANIFEST, assert_error, digest_of, image_manifest, push_blob, push_image

pytestmark = pytest.mark.fast

SERVICE = "moorage-registry"


@pytest.fixture
def client(inprocess: InProcessMoorage) -> Iterator[httpx.Client]:
    """Overrides the suite's real-server client: the admin, in-process."""
    with inprocess.client() as c:
        yield c


@pytest.fixture
def repo(inprocess: InProcessMoorage) -> str:
    return inprocess.project("library") + f"/r{uuid.uuid4().hex[:10]}"


def test_version_check_answers_the_admin_and_challenges_everyone_else(inprocess: InProcessMoorage) -> None:
    with inprocess.client() as admin:
        ok = admin.get("/v2/")
    assert ok.status_code == 200
    assert ok.headers["Docker-Distribution-API-Version"] == "registry/2.0"

    with inprocess.client(auth=None) as anonymous:
        challenged = anonymous.get("/v2/")
    assert_error(challenged, 401, "UNAUTHORIZED")
    # The realm is built from the request's own address: a client fetches its token where it found the registry.
    assert challenged.headers["WWW-Authenticate"] == f'Bearer realm="{BASE_URL}/service/token",service="{SERVICE}"'

    with inprocess.client(auth=("admin", "not-the-password")) as wrong:
        assert_error(wrong.get("/v2/"), 401, "UNAUTHORIZED")


def test_a_token_from_the_token_service_opens_the_registry(inprocess: InProcessMoorage, repo: str) -> None:
    # The signing key was made by the same preparation `moorage serve` does; a token it signed must work.
    with inprocess.client() as admin:
        issued = admin.get("/service/token", params={"service": SERVICE, "scope": f"repository:{repo}:pull,push"})
    assert issued.status_code == 200, issued.text
    token = issued.json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == "admin" and claims["aud"] == SERVICE
    assert claims["access"] == [{"type": "repository", "name": repo, "actions": ["pull", "push"]}]

    with inprocess.client(auth=None, headers={"Authorization": f"Bearer {token}"}) as bearer:
        assert bearer.get("/v2/").status_code == 200
        _, body = push_image(bearer, repo, "v1")
        assert bearer.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST}).content == body


def test_monolithic_push_then_manifest_put_and_get_round_trip(client: httpx.Client, repo: str) -> None:
    config, layer = b'{"os":"linux","architecture":"amd64"}', os.urandom(4096)
    assert push_blob(client, repo, config) == digest_of(config)
    push_blob(client, repo, layer)
    # Odd whitespace must survive: the digest is of these very bytes.
    body = json.dumps(image_manifest(config, [layer]), indent=3).encode() + b"\n"
    put = client.put(f"/v2/{repo}/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201, put.text
    digest = digest_of(body)
    assert put.headers["Docker-Content-Digest"] == digest
    assert put.headers["Location"] == f"/v2/{repo}/manifests/{digest}"

    for reference in ("v1", digest):
        got = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200, got.text
        assert got.content == body
        assert got.headers["Content-Type"] == OCI_MANIFEST
        assert got.headers["Docker-Content-Digest"] == digest
        head = client.head(f"/v2/{repo}/manifests/{reference}")
        assert head.status_code == 200 and head.headers["Content-Length"] == str(len(body))
    blob = client.get(f"/v2/{repo}/blobs/{digest_of(layer)}")
    assert blob.status_code == 200 and blob.content == layer
    assert client.get(f"/v2/{repo}/tags/list").json() == {"name": repo, "tags": ["v1"]}


def test_chunked_upload_reports_progress_and_commits(client: httpx.Client, repo: str) -> None:
    data = os.urandom(300_000)
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    middle = 100_000
    sent = client.patch(location, content=data[:middle],
                        headers={"Content-Type": "application/octet-stream", "Content-Range": f"0-{middle - 1}"})
    assert sent.status_code == 202, sent.text
    assert sent.headers["Range"] == f"0-{middle - 1}"
    done = client.put(sent.headers["Location"], params={"digest": digest_of(data)}, content=data[middle:])
    assert done.status_code == 201, done.text
    assert client.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data


def test_bad_input_gets_the_spec_error_not_a_500(client: httpx.Client, repo: str) -> None:
    data = os.urandom(100)
    wrong = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest_of(b"something else")}, content=data)
    assert_error(wrong, 400, "DIGEST_INVALID")
    assert_error(client.get(f"/v2/{repo}/manifests/nope"), 404, "MANIFEST_UNKNOWN")
    missing_layer = json.dumps(image_manifest(b"{}", [os.urandom(10)])).encode()
    assert_error(client.put(f"/v2/{repo}/manifests/v1", content=missing_layer, headers={"Content-Type": OCI_MANIFEST}),
                 400, "MANIFEST_BLOB_UNKNOWN")
    assert_error(client.put(f"/v2/{repo}/manifests/v1", content=b"{not json", headers={"Content-Type": OCI_MANIFEST}),
                 400, "MANIFEST_INVALID")
    assert_error(client.get("/v2/library/x/unknown-endpoint"), 404, "UNSUPPORTED")
    assert_error(client.request("PATCH", f"/v2/{repo}/manifests/latest"), 405, "UNSUPPORTED")


def test_concurrent_pushes_of_one_blob_all_succeed(inprocess: InProcessMoorage, repo: str) -> None:
    # Eight clients at once on the app's own loop: the blob is stored once and every push is told it is there.
    data = os.urandom(50_000)
    digest = digest_of(data)

    async def push_together() -> list[int]:
        async with inprocess.async_client() as c:
            responses = await asyncio.gather(*(
                c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data) for _ in range(8)))
        return [r.status_code for r in responses]

    assert inprocess.call(push_together) == [201] * 8
    with inprocess.client() as c:
        assert c.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_open_upload_sessions_are_capped_per_repository(inprocess_factory: Callable[..., InProcessMoorage]) -> None:
    capped = inprocess_factory(max_uploads_per_repository=2)
    repo = capped.project("capped") + "/app"
    with capped.client() as c:
        locations = [c.post(f"/v2/{repo}/blobs/uploads/").headers["Location"] for _ in range(2)]
        message = assert_error(c.post(f"/v2/{repo}/blobs/uploads/"), 429, "TOOMANYREQUESTS")["message"]
        assert f"repository {repo} already has 2 open uploads" in message and "max_uploads_per_repository" in message
        # A session that ends makes room for the next.
        assert c.delete(locations[0]).status_code == 204
        assert c.post(f"/v2/{repo}/blobs/uploads/").status_code == 202
