"""An administrator limits a project's storage through Harbor's quota API (listQuotas, getQuota, updateQuota,
``storage_limit`` on a project, ``quota`` in its summary), and pushes past the limit are refused with the
numbers: on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os

import httpx

from tests.api.harbor import PASSWORD, add_member, api, assert_error, make_user, unique
from tests.support.moorage import MoorageServer
from tests.support.oci import OCI_MANIFEST, digest_of, image_manifest, push_blob
from tests.support.oci import assert_error as registry_error

MiB = 1024 * 1024


def quota_of(admin: httpx.Client, project: str) -> dict:
    project_id = admin.get(f"/projects/{project}").json()["project_id"]
    r = admin.get("/quotas", params={"reference": "project", "reference_id": str(project_id)})
    assert r.status_code == 200, r.text
    assert r.headers["x-total-count"] == "1"
    return r.json()[0]  # type: ignore[no-any-return]


def used(admin: httpx.Client, project: str) -> int:
    return int(quota_of(admin, project)["used"]["storage"])


def push(registry: httpx.Client, repo: str, tag: str, layers: list[bytes]) -> httpx.Response:
    config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex()}).encode()
    for blob in (config, *layers):
        push_blob(registry, repo, blob)
    body = json.dumps(image_manifest(config, layers)).encode()
    return registry.put(f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST})


def image_size(registry: httpx.Client, repo: str, tag: str) -> int:
    """Manifest, config and layers of a pushed image, as the quota counts them."""
    manifest = registry.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    document = manifest.json()
    return len(manifest.content) + document["config"]["size"] + sum(layer["size"] for layer in document["layers"])


def test_a_project_created_with_a_storage_limit_shows_its_quota_everywhere(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        name = unique("q")
        r = admin.post("/projects", json={"project_name": name, "storage_limit": 100 * MiB})
        assert r.status_code == 201, r.text
        project_id = admin.get(f"/projects/{name}").json()["project_id"]
        quota = quota_of(admin, name)
        assert quota["ref"] == {"id": project_id, "name": name, "owner_name": "admin"}
        assert quota["hard"] == {"storage": 100 * MiB} and quota["used"] == {"storage": 0}
        assert quota["creation_time"].endswith("Z") and quota["update_time"].endswith("Z")
        assert admin.get(f"/quotas/{quota['id']}").json() == quota
        summary = admin.get(f"/projects/{name}/summary").json()
        assert summary["quota"] == {"hard": {"storage": 100 * MiB}, "used": {"storage": 0}}

        # Without storage_limit a project has no limit (-1), as Harbor's default.
        other = unique("q")
        assert admin.post("/projects", json={"project_name": other}).status_code == 201
        assert quota_of(admin, other)["hard"] == {"storage": -1}

        # The limit changes through updateProject and through updateQuota.
        assert admin.put(f"/projects/{name}", json={"storage_limit": 5 * MiB}).status_code == 200
        assert quota_of(admin, name)["hard"] == {"storage": 5 * MiB}
        r = admin.put(f"/quotas/{quota['id']}", json={"hard": {"storage": -1}})
        assert r.status_code == 200, r.text
        assert admin.get(f"/quotas/{quota['id']}").json()["hard"] == {"storage": -1}

        listed = admin.get("/quotas", params={"page_size": 100, "sort": "-hard.storage"})
        assert listed.status_code == 200
        ids = [q["id"] for q in listed.json()]
        assert quota["id"] in ids and int(listed.headers["x-total-count"]) >= 2
        hards = [q["hard"]["storage"] for q in listed.json()]
        assert hards == sorted(hards, reverse=True)
        assert admin.get("/quotas", params={"reference": "registry"}).json() == []


def test_bad_limits_and_unknown_quotas_are_refused_with_what_to_send(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        name = unique("q")
        assert_error(admin.post("/projects", json={"project_name": name, "storage_limit": -5}), 400, "BAD_REQUEST")
        assert admin.post("/projects", json={"project_name": name, "storage_limit": 10 * MiB}).status_code == 201
        quota_id = quota_of(admin, name)["id"]
        r = admin.put(f"/quotas/{quota_id}", json={"hard": {"storage": -2}})
        assert_error(r, 400, "BAD_REQUEST")
        assert "-1 for no limit" in r.json()["errors"][0]["message"]
        assert_error(admin.put(f"/quotas/{quota_id}", json={"hard": {"count": 5}}), 400, "BAD_REQUEST")
        assert_error(admin.put(f"/quotas/{quota_id}", json={}), 400, "BAD_REQUEST")
        assert_error(admin.put(f"/quotas/{quota_id}", json={"hard": {"storage": "lots"}}), 400, "BAD_REQUEST")
        assert_error(admin.get("/quotas/999999999"), 404, "NOT_FOUND")
        assert_error(admin.put("/quotas/999999999", json={"hard": {"storage": 1}}), 404, "NOT_FOUND")
        assert_error(admin.get("/quotas/x"), 400, "BAD_REQUEST")


def test_only_administrators_set_limits_and_members_see_their_projects_usage(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        _, user = make_user(admin)
        name = unique("q")
        assert admin.post("/projects", json={"project_name": name, "storage_limit": 10 * MiB}).status_code == 201
        add_member(admin, name, user, 1)  # project administrator, not a system administrator
        quota_id = quota_of(admin, name)["id"]
    with api(moorage, (user, PASSWORD)) as member:
        assert_error(member.get("/quotas"), 403, "FORBIDDEN")
        assert_error(member.get(f"/quotas/{quota_id}"), 403, "FORBIDDEN")
        assert_error(member.put(f"/quotas/{quota_id}", json={"hard": {"storage": -1}}), 403, "FORBIDDEN")
        assert_error(member.put(f"/projects/{name}", json={"storage_limit": -1}), 403, "FORBIDDEN")
        assert member.get(f"/projects/{name}/summary").json()["quota"]["hard"] == {"storage": 10 * MiB}
        # Creating a project with "no limit" (what clients send by default) is anyone's; a limit is not.
        assert member.post("/projects", json={"project_name": unique("own"), "storage_limit": -1}).status_code \
            in (201, 403)  # 403 when project creation is restricted to administrators
    with api(moorage, None) as anonymous:
        assert_error(anonymous.get("/quotas"), 401, "UNAUTHORIZED")


def test_usage_counts_each_layer_once_and_pushes_past_the_limit_are_refused(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        name = unique("q")
        assert admin.post("/projects", json={"project_name": name, "storage_limit": 3 * MiB}).status_code == 201
        shared = os.urandom(MiB)
        assert push(registry, f"{name}/a", "v1", [shared]).status_code == 201
        first = image_size(registry, f"{name}/a", "v1")
        assert used(admin, name) == first
        # The same layer in another image and another repository of the project counts once.
        assert push(registry, f"{name}/b", "v1", [shared]).status_code == 201
        second = image_size(registry, f"{name}/b", "v1") - MiB
        assert used(admin, name) == first + second

        # A monolithic upload that would pass the limit is refused before its bytes are stored.
        big = os.urandom(2 * MiB)
        r = registry.post(f"/v2/{name}/a/blobs/uploads/", params={"digest": digest_of(big)}, content=big,
                          headers={"Content-Type": "application/octet-stream"})
        registry_error(r, 403, "DENIED")
        message = r.json()["errors"][0]["message"]
        assert message.startswith("adding 2 MiB would exceed the project's limit of 3 MiB; ")
        assert r.json()["errors"][0]["detail"] == {"project": name, "adding": 2 * MiB, "used": first + second,
                                                   "limit": 3 * MiB}
        assert registry.head(f"/v2/{name}/a/blobs/{digest_of(big)}").status_code == 404

        # A chunked upload is refused when it is closed, and keeps nothing.
        r = registry.post(f"/v2/{name}/a/blobs/uploads/")
        assert r.status_code == 202
        location = r.headers["location"]
        r = registry.patch(location, content=big[:MiB], headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 202
        r = registry.put(r.headers["location"], params={"digest": digest_of(big)}, content=big[MiB:],
                         headers={"Content-Type": "application/octet-stream"})
        registry_error(r, 403, "DENIED")
        assert "would exceed the project's limit of 3 MiB" in r.json()["errors"][0]["message"]
        assert registry.head(f"/v2/{name}/a/blobs/{digest_of(big)}").status_code == 404

        # A blob the project already counts is admitted however full the project is.
        tight = admin.get(f"/projects/{name}").json()["project_id"]
        assert admin.put(f"/projects/{tight}", json={"storage_limit": first + second}).status_code == 200
        push_blob(registry, f"{name}/c", shared)

        # A mount from another project that would pass the limit is refused.
        other = unique("q")
        assert admin.post("/projects", json={"project_name": other}).status_code == 201
        elsewhere = os.urandom(MiB // 2)
        push_blob(registry, f"{other}/src", elsewhere)
        r = registry.post(f"/v2/{name}/a/blobs/uploads/", params={"mount": digest_of(elsewhere),
                                                                  "from": f"{other}/src"})
        registry_error(r, 403, "DENIED")
        assert "adding 512 KiB would exceed" in r.json()["errors"][0]["message"]

        # Blobs that fit one by one, in a manifest that does not: the manifest PUT is refused, nothing counted.
        assert admin.put(f"/projects/{name}", json={"storage_limit": first + second + MiB}).status_code == 200
        r = push(registry, f"{name}/a", "v2", [os.urandom(MiB // 2), os.urandom(MiB // 2)])
        registry_error(r, 403, "DENIED")
        assert "would exceed the project's limit of" in r.json()["errors"][0]["message"]
        assert registry.get(f"/v2/{name}/a/manifests/v2").status_code == 404
        assert used(admin, name) == first + second

        # Deleting an image gives back what only it held; the shared layer stays counted.
        digest = registry.head(f"/v2/{name}/a/manifests/v1").headers["docker-content-digest"]
        assert admin.delete(f"/projects/{name}/repositories/a/artifacts/{digest}").status_code == 200
        assert used(admin, name) == image_size(registry, f"{name}/b", "v1")
        assert admin.delete(f"/projects/{name}/repositories/b").status_code == 200
        assert used(admin, name) == 0
        assert admin.get(f"/projects/{name}/summary").json()["quota"]["used"] == {"storage": 0}
