"""Speaking the distribution protocol by hand, the way a client library would: digests, spec errors, monolithic
blob pushes and small random images. Every helper takes an ``httpx.Client``, so the same ones drive a real
server (``MoorageServer.client()``) and the in-process app (``InProcessMoorage.client()``)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is the spec's error ``code`` with a message; returns that error (``{}`` for a HEAD, which
    has no body to carry one)."""
    assert response.status_code == status, (response.status_code, response.text)
    if response.request.method == "HEAD":
        return {}
    errors = response.json()["errors"]
    assert errors[0]["code"] == code, errors
    assert errors[0]["message"], "an error must say what to fix"
    error: dict[str, Any] = errors[0]
    return error


def push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    """A monolithic upload (one POST with ``?digest=``); returns the blob's digest."""
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
        "layers": [{"mediaType": OCI_LAYER, "digest": digest_of(layer), "size": len(layer)} for layer in layers],
        **extra,
    }


def push_image(client: httpx.Client, repo: str, tag: str | None = None, layer_size: int = 2048,
               **extra: Any) -> tuple[str, bytes]:
    """Push a small random image (config + one layer, then the manifest under ``tag``, else its digest);
    returns (manifest digest, manifest bytes). ``extra`` goes into the manifest, e.g. ``subject=...``."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": uuid.uuid4().hex}).encode()
    layer = os.urandom(layer_size)
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    body = json.dumps(image_manifest(config, [layer], **extra)).encode()
    reference = tag or digest_of(body)
    response = client.put(f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    return digest_of(body), body
