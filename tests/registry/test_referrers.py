"""Referrers: manifests with a subject, listed as an index, with and without artifactType filtering."""

from __future__ import annotations

import json

import httpx

from tests.registry.conftest import OCI_INDEX, OCI_MANIFEST, assert_error, digest_of, push_blob, push_image


def push_referrer(client: httpx.Client, repo: str, subject: tuple[str, bytes], artifact_type: str | None,
                  config_type: str = "application/vnd.oci.empty.v1+json",
                  annotations: dict[str, str] | None = None) -> tuple[str, httpx.Response]:
    empty = b"{}"
    push_blob(client, repo, empty)
    manifest: dict[str, object] = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "digest": digest_of(empty), "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject[0], "size": len(subject[1])},
    }
    if artifact_type:
        manifest["artifactType"] = artifact_type
    if annotations:
        manifest["annotations"] = annotations
    body = json.dumps(manifest).encode()
    response = client.put(f"/v2/{repo}/manifests/{digest_of(body)}", content=body,
                          headers={"Content-Type": OCI_MANIFEST})
    return digest_of(body), response


def test_referrers_list_and_filter(client: httpx.Client, repo: str) -> None:
    subject = push_image(client, repo, "v1")
    sbom, response = push_referrer(client, repo, subject, "application/vnd.example.sbom",
                                   annotations={"org.example.format": "spdx"})
    assert response.status_code == 201
    assert response.headers["OCI-Subject"] == subject[0]
    signature, _ = push_referrer(client, repo, subject, None, config_type="application/vnd.example.sig")

    listed = client.get(f"/v2/{repo}/referrers/{subject[0]}")
    assert listed.status_code == 200
    assert listed.headers["Content-Type"] == OCI_INDEX
    index = listed.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in index["manifests"]}
    assert set(by_digest) == {sbom, signature}
    assert by_digest[sbom]["artifactType"] == "application/vnd.example.sbom"
    assert by_digest[sbom]["annotations"] == {"org.example.format": "spdx"}
    # No artifactType: the config media type stands in for it.
    assert by_digest[signature]["artifactType"] == "application/vnd.example.sig"
    assert "OCI-Filters-Applied" not in listed.headers

    filtered = client.get(f"/v2/{repo}/referrers/{subject[0]}",
                          params={"artifactType": "application/vnd.example.sbom"})
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [d["digest"] for d in filtered.json()["manifests"]] == [sbom]


def test_referrer_pushed_before_its_subject_is_accepted(client: httpx.Client, repo: str) -> None:
    ghost = (digest_of(b"not pushed yet"), b"not pushed yet")
    digest, response = push_referrer(client, repo, ghost, "application/vnd.example.sbom")
    assert response.status_code == 201
    assert [d["digest"] for d in client.get(f"/v2/{repo}/referrers/{ghost[0]}").json()["manifests"]] == [digest]


def test_referrers_of_nothing_is_an_empty_index_and_bad_digest_400(client: httpx.Client, repo: str) -> None:
    empty = client.get(f"/v2/{repo}/referrers/{digest_of(b'nobody')}")
    assert empty.status_code == 200 and empty.json()["manifests"] == []
    assert_error(client.get(f"/v2/{repo}/referrers/sha256:nothex"), 400, "DIGEST_INVALID")


def test_deleting_a_referrer_removes_it_from_the_list(client: httpx.Client, repo: str) -> None:
    subject = push_image(client, repo, "v1")
    sbom, _ = push_referrer(client, repo, subject, "application/vnd.example.sbom")
    assert client.delete(f"/v2/{repo}/manifests/{sbom}").status_code == 202
    assert client.get(f"/v2/{repo}/referrers/{subject[0]}").json()["manifests"] == []


def test_an_artifact_type_filter_holding_nul_matches_nothing(client: httpx.Client, repo: str) -> None:
    """Found by the fuzzer: PostgreSQL refuses text holding NUL outright, so this filter was a 500 there."""
    subject = push_image(client, repo, "v1")
    push_referrer(client, repo, subject, "application/vnd.example.sbom")
    for artifact_type in ("\x00", "application/vnd.example.sbom\x00"):
        response = client.get(f"/v2/{repo}/referrers/{subject[0]}", params={"artifactType": artifact_type})
        assert response.status_code == 200 and response.json()["manifests"] == [], response.text
