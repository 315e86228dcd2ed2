"""Manifests: exact bytes in and out, every media type, references checked, bad input refused."""

from __future__ import annotations

import json
import os

import httpx

from tests.registry.conftest import (
    OCI_INDEX,
    OCI_MANIFEST,
    assert_error,
    digest_of,
    image_manifest,
    push_blob,
    push_image,
)

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def put_manifest(client: httpx.Client, repo: str, reference: str, body: bytes,
                 media_type: str = OCI_MANIFEST) -> httpx.Response:
    return client.put(f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type})


def test_the_exact_bytes_pushed_are_served_under_their_digest(client: httpx.Client, repo: str) -> None:
    config, layer = b'{"os":"linux","architecture":"amd64"}', os.urandom(1000)
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    # Odd whitespace and key order must survive: the digest is of these bytes.
    body = json.dumps(image_manifest(config, [layer]), indent=3).encode() + b"\n"
    response = put_manifest(client, repo, "v1", body)
    assert response.status_code == 201, response.text
    digest = digest_of(body)
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Location"] == f"/v2/{repo}/manifests/{digest}"

    for reference in ("v1", digest):
        got = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["Content-Type"] == OCI_MANIFEST
        assert got.headers["Docker-Content-Digest"] == digest
        head = client.head(f"/v2/{repo}/manifests/{reference}")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(body))
        assert head.headers["Docker-Content-Digest"] == digest


def test_docker_schema2_and_manifest_list(client: httpx.Client, repo: str) -> None:
    config, layer = b'{"os":"linux"}', os.urandom(100)
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                           "digest": digest_of(config), "size": len(config)},
                "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                            "digest": digest_of(layer), "size": len(layer)}]}
    body = json.dumps(manifest).encode()
    assert put_manifest(client, repo, "amd64", body, DOCKER_MANIFEST).status_code == 201
    listing = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": digest_of(body), "size": len(body),
         "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    assert put_manifest(client, repo, "multi", listing, DOCKER_LIST).status_code == 201
    got = client.get(f"/v2/{repo}/manifests/multi", headers={"Accept": f"{DOCKER_LIST}, {DOCKER_MANIFEST}"})
    assert got.headers["Content-Type"] == DOCKER_LIST and got.content == listing


def test_oci_index_of_two_platforms(client: httpx.Client, repo: str) -> None:
    children = [push_image(client, repo) for _ in range(2)]
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body),
         "platform": {"os": "linux", "architecture": arch}}
        for (digest, body), arch in zip(children, ("amd64", "arm64"), strict=True)]}).encode()
    assert put_manifest(client, repo, "latest", index, OCI_INDEX).status_code == 201
    got = client.get(f"/v2/{repo}/manifests/latest", headers={"Accept": OCI_INDEX})
    assert got.content == index


def test_accept_negotiation_refuses_a_type_the_client_cannot_read(client: httpx.Client, repo: str) -> None:
    push_image(client, repo, "v1")
    error = assert_error(client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": DOCKER_MANIFEST}),
                         404, "MANIFEST_UNKNOWN")
    assert OCI_MANIFEST in error["message"]
    assert client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": "*/*"}).status_code == 200


def test_artifact_with_custom_config_and_artifact_type(client: httpx.Client, repo: str) -> None:
    empty = b"{}"
    blob = b"sbom content"
    push_blob(client, repo, empty)
    push_blob(client, repo, blob)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.example.sbom",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(empty),
                           "size": 2},
                "layers": [{"mediaType": "text/plain", "digest": digest_of(blob), "size": len(blob)}]}
    assert put_manifest(client, repo, "sbom", json.dumps(manifest).encode()).status_code == 201


def test_manifest_naming_a_missing_blob_is_refused(client: httpx.Client, repo: str) -> None:
    config = b'{"x":1}'
    push_blob(client, repo, config)
    missing_layer = os.urandom(64)
    body = json.dumps(image_manifest(config, [missing_layer])).encode()
    error = assert_error(put_manifest(client, repo, "v1", body), 400, "MANIFEST_BLOB_UNKNOWN")
    assert digest_of(missing_layer) in error["message"]
    assert client.head(f"/v2/{repo}/manifests/v1").status_code == 404


def test_an_image_of_1200_layers_is_checked_layer_by_layer(client: httpx.Client, repo: str) -> None:
    """More references than one SQL statement may carry: every one is still checked."""
    config = b'{"layers":1200}'
    push_blob(client, repo, config)
    layers = [os.urandom(16) for _ in range(1200)]
    for layer in layers[:-1]:
        push_blob(client, repo, layer)
    body = json.dumps(image_manifest(config, layers)).encode()
    error = assert_error(put_manifest(client, repo, "tall", body), 400, "MANIFEST_BLOB_UNKNOWN")
    assert error["detail"]["digests"] == [digest_of(layers[-1])]
    push_blob(client, repo, layers[-1])
    assert put_manifest(client, repo, "tall", body).status_code == 201


def test_index_naming_a_missing_manifest_is_refused(client: httpx.Client, repo: str) -> None:
    push_image(client, repo, "present")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest_of(b"absent"), "size": 6}]}).encode()
    # The spec: a manifest refused for naming what the registry lacks is MANIFEST_BLOB_UNKNOWN, index or not
    # (found by the fuzzer; this was MANIFEST_UNKNOWN).
    error = assert_error(put_manifest(client, repo, "idx", index, OCI_INDEX), 400, "MANIFEST_BLOB_UNKNOWN")
    assert error["detail"]["digests"] == [digest_of(b"absent")]


def test_malformed_manifests_are_refused_with_manifest_invalid(client: httpx.Client, repo: str) -> None:
    config = b'{"y":2}'
    push_blob(client, repo, config)
    good = image_manifest(config, [])
    cases = {
        "not json": b"{not json",
        "array": b"[]",
        "wrong schemaVersion": json.dumps({**good, "schemaVersion": 3}).encode(),
        "layers not a list": json.dumps({**good, "layers": {}}).encode(),
        "bad descriptor digest": json.dumps({**good, "config": {**good["config"], "digest": "sha256:zz"}}).encode(),
        "negative size": json.dumps({**good, "config": {**good["config"], "size": -1}}).encode(),
        "unknown media type": json.dumps({**good, "mediaType": "application/x-nope"}).encode(),
    }
    for what, body in cases.items():
        response = put_manifest(client, repo, "bad", body)
        assert response.status_code == 400, (what, response.text)
        assert response.json()["errors"][0]["code"] == "MANIFEST_INVALID", what


def test_media_type_must_match_content_type(client: httpx.Client, repo: str) -> None:
    _, body = push_image(client, repo)
    error = assert_error(put_manifest(client, repo, "v2", body, DOCKER_MANIFEST), 400, "MANIFEST_INVALID")
    assert "Content-Type" in error["message"]


def test_schema1_is_refused_with_a_message_saying_so(client: httpx.Client, repo: str) -> None:
    body = json.dumps({"schemaVersion": 1, "name": repo, "tag": "old", "fsLayers": [], "history": []}).encode()
    error = assert_error(put_manifest(client, repo, "old", body,
                                      "application/vnd.docker.distribution.manifest.v1+prettyjws"),
                         400, "MANIFEST_INVALID")
    assert "schema 1" in error["message"]


def test_oversized_manifest_is_refused_with_413(client: httpx.Client, repo: str) -> None:
    config = b'{"big":true}'
    push_blob(client, repo, config)
    body = json.dumps(image_manifest(config, [], annotations={"pad": "x" * (4 * 1024 * 1024)})).encode()
    error = assert_error(put_manifest(client, repo, "big", body), 413, "MANIFEST_INVALID")
    assert "4194304" in error["message"]


def test_push_by_digest_must_match_the_content(client: httpx.Client, repo: str) -> None:
    digest, body = push_image(client, repo)
    wrong = digest_of(b"not the manifest")
    assert_error(put_manifest(client, repo, wrong, body), 400, "DIGEST_INVALID")
    assert put_manifest(client, repo, digest, body).status_code == 201


def test_bad_tag_is_refused(client: httpx.Client, repo: str) -> None:
    _, body = push_image(client, repo)
    assert_error(put_manifest(client, repo, "-bad", body), 400, "MANIFEST_INVALID")
    assert_error(put_manifest(client, repo, "x" * 129, body), 400, "MANIFEST_INVALID")


def test_unknown_tag_and_digest(client: httpx.Client, repo: str) -> None:
    push_image(client, repo, "v1")
    assert_error(client.get(f"/v2/{repo}/manifests/nope"), 404, "MANIFEST_UNKNOWN")
    # A reference that cannot be a tag or a digest names no manifest: 404, as clients and both
    # conformance suites expect (a push under such a name is the bad request, see above).
    for invalid in (".INVALID_MANIFEST_NAME", "-x", "sha256:short", "x" * 200):
        assert_error(client.get(f"/v2/{repo}/manifests/{invalid}"), 404, "MANIFEST_UNKNOWN")
        head = client.head(f"/v2/{repo}/manifests/{invalid}")
        assert head.status_code == 404 and head.content == b""
    assert_error(client.get(f"/v2/{repo}/manifests/{digest_of(b'x')}"), 404, "MANIFEST_UNKNOWN")
    assert client.head(f"/v2/{repo}/manifests/nope").status_code == 404


def test_retagging_moves_the_tag(client: httpx.Client, repo: str) -> None:
    first, _ = push_image(client, repo, "latest")
    second, _ = push_image(client, repo, "latest")
    assert first != second
    assert client.head(f"/v2/{repo}/manifests/latest").headers["Docker-Content-Digest"] == second
    assert client.head(f"/v2/{repo}/manifests/{first}").status_code == 200


def test_delete_tag_keeps_the_manifest(client: httpx.Client, repo: str) -> None:
    digest, _ = push_image(client, repo, "v1")
    assert client.delete(f"/v2/{repo}/manifests/v1").status_code == 202
    assert_error(client.get(f"/v2/{repo}/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert client.head(f"/v2/{repo}/manifests/{digest}").status_code == 200


def test_delete_manifest_removes_its_tags(client: httpx.Client, repo: str) -> None:
    digest, _ = push_image(client, repo, "v1")
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    assert_error(client.get(f"/v2/{repo}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/manifests/v1"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}/manifests/{digest}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.delete(f"/v2/{repo}-never/manifests/{digest}"), 404, "NAME_UNKNOWN")


def test_manifests_are_readable_through_the_blob_endpoint(client: httpx.Client, repo: str) -> None:
    digest, body = push_image(client, repo, "v1")
    assert client.get(f"/v2/{repo}/blobs/{digest}").content == body


def test_a_manifest_nested_too_deep_is_refused_not_a_crash(client: httpx.Client, repo: str) -> None:
    config = b'{"deep":true}'
    push_blob(client, repo, config)
    # 100,000 levels once exhausted the parser's recursion (a 500); a real manifest nests about 4 deep.
    error = assert_error(put_manifest(client, repo, "deep", b"[" * 100_000 + b"]" * 100_000), 400,
                         "MANIFEST_INVALID")
    assert "deeper than 64 levels" in error["message"]
    # Valid in every other way, with one annotation value nested 200 deep.
    nested = json.dumps(image_manifest(config, [], annotations={"k": "v"})).encode()
    body = nested.replace(b'"v"', b"[" * 200 + b'"v"' + b"]" * 200)
    error = assert_error(put_manifest(client, repo, "deep", body), 400, "MANIFEST_INVALID")
    assert "deeper than 64 levels" in error["message"]
    # Brackets inside strings are text, however many; and an integer too long to convert is bad JSON, not a 500.
    text = json.dumps(image_manifest(config, [], annotations={"k": "[{" * 50_000 + '\\"]'})).encode()
    assert put_manifest(client, repo, "brackets-in-text", text).status_code == 201
    long_int = json.dumps(image_manifest(config, [])).encode().replace(b'"schemaVersion": 2',
                                                                       b'"schemaVersion": ' + b"9" * 5000)
    error = assert_error(put_manifest(client, repo, "huge", long_int), 400, "MANIFEST_INVALID")
    assert "not valid JSON" in error["message"]
    assert_error(client.get(f"/v2/{repo}/manifests/deep"), 404, "MANIFEST_UNKNOWN")


def test_json_other_programs_would_read_differently_is_refused(client: httpx.Client, repo: str) -> None:
    """Found by the fuzzer: Python's parser took a duplicated name (the last one wins, where readers differ),
    a byte order mark, UTF-16 and NaN, all of which Go's clients refuse or read otherwise."""
    config = b'{"z":1}'
    push_blob(client, repo, config)
    good = json.dumps(image_manifest(config, [])).encode()
    other = json.dumps({"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(b"elsewhere"),
                        "size": 9})
    cases = {
        "duplicate name": good[:-1] + b', "config": ' + other.encode() + b"}",
        "byte order mark": b"\xef\xbb\xbf" + good,
        "UTF-16": good.decode().encode("utf-16"),
        "NaN": good[:-1] + b', "x": NaN}',
        "Infinity": good[:-1] + b', "x": -Infinity}',
        "encoded surrogate": good[:-1] + b', "x": "\xed\xa0\x80"}',
    }
    for what, body in cases.items():
        error = assert_error(put_manifest(client, repo, "odd", body), 400, "MANIFEST_INVALID")
        assert "not valid JSON" in error["message"], what
        assert_error(client.get(f"/v2/{repo}/manifests/{digest_of(body)}"), 404, "MANIFEST_UNKNOWN")
    assert_error(client.get(f"/v2/{repo}/manifests/odd"), 404, "MANIFEST_UNKNOWN")
    assert put_manifest(client, repo, "odd", good).status_code == 201


def test_descriptor_fields_are_held_to_the_image_spec(client: httpx.Client, repo: str) -> None:
    """Found by the fuzzer: any non-empty string passed as a media type, sizes past int64 and a schemaVersion
    of 2.0 were stored, though Go's clients cannot read them."""
    config = b'{"w":1}'
    push_blob(client, repo, config)
    good = image_manifest(config, [])
    cases = {
        "config media type without a subtype": {**good, "config": {**good["config"], "mediaType": "no-slash"}},
        "artifactType with NUL": {**good, "artifactType": "application/x\u0000"},
        "artifactType of another script": {**good, "artifactType": "application/\u00e9"},
        "size past int64": {**good, "config": {**good["config"], "size": 2 ** 63}},
        "schemaVersion 2.0": {**good, "schemaVersion": 2.0},
        "schemaVersion true": {**good, "schemaVersion": True},
    }
    for what, document in cases.items():
        body = json.dumps(document).encode()
        response = put_manifest(client, repo, "odd", body)
        assert response.status_code == 400 and response.json()["errors"][0]["code"] == "MANIFEST_INVALID", what
        assert_error(client.get(f"/v2/{repo}/manifests/{digest_of(body)}"), 404, "MANIFEST_UNKNOWN")
    largest = {**good, "config": {**good["config"], "size": 2 ** 63 - 1},
               "artifactType": "application/vnd.example+json; charset=utf-8"}
    assert put_manifest(client, repo, "odd", json.dumps(largest).encode()).status_code == 201
