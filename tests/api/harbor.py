"""Helpers for tests that drive the management API (``/api/v2.0``) of a live moorage server."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

PASSWORD = "Test-Passw0rd"


def api(server: MoorageServer, auth: tuple[str, str] | None = ("admin", ADMIN_PASSWORD)) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v2.0", auth=auth, timeout=30)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def make_project(admin: httpx.Client, public: bool = False, name: str | None = None) -> str:
    name = name or unique("p")
    r = admin.post("/projects", json={"project_name": name, "metadata": {"public": str(public).lower()}})
    assert r.status_code == 201, r.text
    return name


def make_user(admin: httpx.Client, name: str | None = None) -> tuple[int, str]:
    name = name or unique("u")
    r = admin.post("/users", json={"username": name, "password": PASSWORD, "email": f"{name}@example.com",
                                   "realname": name})
    assert r.status_code == 201, r.text
    return int(r.headers["location"].rsplit("/", 1)[1]), name


def add_member(admin: httpx.Client, project: str, username: str, role_id: int) -> int:
    r = admin.post(f"/projects/{project}/members", headers={"X-Is-Resource-Name": "true"},
                   json={"role_id": role_id, "member_user": {"username": username}})
    assert r.status_code == 201, r.text
    return int(r.headers["location"].rsplit("/", 1)[1])


def make_robot(admin: httpx.Client, project: str, actions: list[str], **extra: Any) -> dict[str, Any]:
    body = {"name": unique("bot"), "level": "project", "duration": -1,
            "permissions": [{"kind": "project", "namespace": project,
                             "access": [{"resource": "repository", "action": a} for a in actions]}], **extra}
    r = admin.post("/robots", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    if response.request.method != "HEAD":
        errors = response.json()["errors"]
        assert errors[0]["code"] == code, errors
        assert errors[0]["message"]
    assert response.headers.get("x-request-id")


def push_image(registry: httpx.Client, repo: str, tag: str) -> str:
    """Push a tiny random image by hand (monolithic blob uploads); returns the manifest digest."""
    import hashlib
    import json
    import os

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": secrets.token_hex(8)}).encode()
    layer = os.urandom(512)
    for blob in (config, layer):
        r = registry.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest(blob)}, content=blob,
                          headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(layer),
                    "size": len(layer)}]}).encode()
    r = registry.put(f"/v2/{repo}/manifests/{tag}", content=manifest,
                     headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 201, r.text
    return digest(manifest)
