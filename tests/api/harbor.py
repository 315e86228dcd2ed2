"""Helpers for tests that drive the management API (``/api/v2.0``) of a live moorage server."""

from __future__ import annotations

import copy
import functools
import secrets
from pathlib import Path
from typing import Any

import httpx

from tests.support import oci
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

PASSWORD = "Test-Passw0rd"
#: Harbor's zero time: what the API says for a pull that never happened.
NEVER = "0001-01-01T00:00:00.000Z"


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
    """The registry's error shape (``tests.support.oci``), plus the request id every API answer carries."""
    oci.assert_error(response, status, code)
    assert response.headers.get("x-request-id")


def push_image(registry: httpx.Client, repo: str, tag: str) -> str:
    """Push a tiny random image by hand (monolithic blob uploads); returns the manifest digest."""
    return oci.push_image(registry, repo, tag, layer_size=512)[0]


def push_with_config(registry: httpx.Client, repo: str, config: dict[str, Any], tag: str | None = None) -> str:
    """Push an image whose config blob is ``config`` (under ``tag``, else by digest); returns its digest."""
    import json
    import os

    config_bytes = json.dumps(config).encode()
    layer = os.urandom(256)
    oci.push_blob(registry, repo, config_bytes)
    oci.push_blob(registry, repo, layer)
    body = json.dumps(oci.image_manifest(config_bytes, [layer])).encode()
    digest = oci.digest_of(body)
    r = registry.put(f"/v2/{repo}/manifests/{tag or digest}", content=body, headers={"Content-Type": oci.OCI_MANIFEST})
    assert r.status_code == 201, r.text
    return digest


def push_index(registry: httpx.Client, repo: str, children: list[dict[str, Any]], tag: str) -> str:
    """Push an image index listing ``children`` (descriptors without mediaType, digest and size, which are
    filled in from each child's manifest, pushed here by digest); returns the index's digest."""
    import json

    descriptors = []
    for extra in children:
        digest, body = oci.push_image(registry, repo)
        descriptors.append({"mediaType": oci.OCI_MANIFEST, "digest": digest, "size": len(body), **extra})
    index = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": descriptors}).encode()
    r = registry.put(f"/v2/{repo}/manifests/{tag}", content=index, headers={"Content-Type": oci.OCI_INDEX})
    assert r.status_code == 201, r.text
    return oci.digest_of(index)


SWAGGER = Path(__file__).parent / "reference" / "harbor-api-v2.0-swagger.yaml"


@functools.cache
def _swagger() -> dict[str, Any]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    document: dict[str, Any] = yaml.load(SWAGGER.read_text(), Loader=loader)
    return document


def harbor_swagger() -> dict[str, Any]:
    """Harbor's own API description (Swagger 2.0), a fresh copy each call."""
    return copy.deepcopy(_swagger())
