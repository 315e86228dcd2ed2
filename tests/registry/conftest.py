"""Helpers for speaking the distribution protocol by hand, the way a client library would. Every test
here runs against moorage on SQLite and again on PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.databases import moorage_on_each_database  # noqa: F401
from tests.support.moorage import MoorageServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    errors = response.json()["errors"]
    assert errors[0]["code"] == code, errors
    assert errors[0]["message"], "an error must say what to fix"
    return errors[0]


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = digest_of(data)
    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data,
                           headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    return digest


def image_manifest(config: bytes, layers: list[bytes], **extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": LAYER, "digest": digest_of(layer), "size": len(layer)} for layer in layers],
        **extra,
    }


def push_image(client: httpx.Client, repo: str, tag: str | None = None, **extra: Any) -> tuple[str, bytes]:
    """Push a small random image; returns (manifest digest, manifest bytes)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": uuid.uuid4().hex}).encode()
    layer = os.urandom(2048)
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    body = json.dumps(image_manifest(config, [layer], **extra)).encode()
    reference = tag or digest_of(body)
    response = client.put(f"/v2/{repo}/manifests/{reference}", content=body,
                          headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest_of(body), body


@pytest.fixture
def client(moorage: MoorageServer) -> Iterator[httpx.Client]:
    with moorage.client() as c:
        yield c


@pytest.fixture
def repo(moorage: MoorageServer) -> str:
    """A fresh repository name in the shared test project."""
    return moorage.project("library") + f"/r{uuid.uuid4().hex[:10]}"
