"""Helpers for tests that drive the management API (``/api/v2.0``) of a live moorage server."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.support import oci
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
    """The registry's error shape (``tests.support.oci``), plus the request id every API answer carries."""
    oci.assert_error(response, status, code)
    assert response.headers.get("x-request-id")


def push_image(registry: httpx.Client, repo: str, tag: str) -> str:
    """Push a tiny random image by hand (monolithic blob uploads); returns the manifest digest."""
    return oci.push_image(registry, repo, tag, layer_size=512)[0]
