"""A maintainer makes release tags immutable through Harbor's immutable tag rule API, and then no client can
move or delete them: a push of other content under the tag, a /v2 DELETE, the API's deletes. The refusal names
the rule; listings say which tags are immutable; disabling the rule lifts it."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.harbor import PASSWORD, add_member, api, assert_error, make_project, make_user, push_image, push_index
from tests.support import oci
from tests.support.moorage import MoorageServer
from tests.support.oci import OCI_INDEX


def immutable_rule(tags: str, repos: str = "**", **extra: Any) -> dict[str, Any]:
    return {"disabled": False, "action": "immutable", "template": "immutable_template",
            "tag_selectors": [{"kind": "doublestar", "decoration": "matches", "pattern": tags}],
            "scope_selectors": {"repository": [{"kind": "doublestar", "decoration": "repoMatches",
                                                "pattern": repos}]}, **extra}


def create(admin: httpx.Client, project: str, body: dict[str, Any]) -> int:
    r = admin.post(f"/projects/{project}/immutabletagrules", json=body)
    assert r.status_code == 201, r.text
    assert r.headers["location"].startswith(f"/api/v2.0/projects/{project}/immutabletagrules/")
    return int(r.headers["location"].rsplit("/", 1)[1])


def test_rules_are_listed_created_changed_and_deleted_as_harbor_shapes_them(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        first = create(admin, project, immutable_rule("v*"))
        second = create(admin, project, immutable_rule("release-*", "app/**", priority=1))
        listed = admin.get(f"/projects/{project}/immutabletagrules", params={"page_size": 1})
        assert listed.status_code == 200 and listed.headers["x-total-count"] == "2"
        assert len(listed.json()) == 1 and 'rel="next"' in listed.headers["link"]
        rules = {r["id"]: r for r in admin.get(f"/projects/{project}/immutabletagrules").json()}
        assert rules[first]["tag_selectors"][0]["pattern"] == "v*" and rules[first]["disabled"] is False
        assert rules[second]["scope_selectors"]["repository"][0]["pattern"] == "app/**"
        assert rules[first]["template"] == "immutable_template" and rules[first]["action"] == "immutable"
        by_id = admin.get(f"/projects/{project_id(admin, project)}/immutabletagrules").json()
        assert {r["id"] for r in by_id} == {first, second}

        assert_error(admin.post(f"/projects/{project}/immutabletagrules", json=immutable_rule("v*")), 409,
                     "CONFLICT")
        assert_error(admin.post(f"/projects/{project}/immutabletagrules", json={"tag_selectors": []}), 400,
                     "BAD_REQUEST")
        assert_error(admin.post(f"/projects/{project}/immutabletagrules",
                                json=immutable_rule("v{1")), 400, "BAD_REQUEST")
        assert_error(admin.post(f"/projects/{project}/immutabletagrules",
                                json={**immutable_rule("x"), "priority": "high"}), 400, "BAD_REQUEST")
        assert_error(admin.post("/projects/no-such-project/immutabletagrules", json=immutable_rule("x")), 404,
                     "NOT_FOUND")

        # The portal's toggle sends the flag alone.
        assert admin.put(f"/projects/{project}/immutabletagrules/{first}", json={"disabled": True}).status_code == 200
        toggled = {r["id"]: r for r in admin.get(f"/projects/{project}/immutabletagrules").json()}[first]
        assert toggled["disabled"] is True and toggled["tag_selectors"][0]["pattern"] == "v*"
        r = admin.put(f"/projects/{project}/immutabletagrules/{first}", json=immutable_rule("v2.*"))
        assert r.status_code == 200, r.text
        assert_error(admin.put(f"/projects/{project}/immutabletagrules/999999", json=immutable_rule("x")), 404,
                     "NOT_FOUND")
        assert admin.delete(f"/projects/{project}/immutabletagrules/{second}").status_code == 200
        assert_error(admin.delete(f"/projects/{project}/immutabletagrules/{second}"), 404, "NOT_FOUND")
        assert admin.get(f"/projects/{project}/immutabletagrules").headers["x-total-count"] == "1"


def project_id(admin: httpx.Client, name: str) -> int:
    return int(admin.get(f"/projects/{name}").json()["project_id"])


def test_maintainers_manage_rules_and_developers_cannot(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        _, maintainer = make_user(admin)
        add_member(admin, project, maintainer, 4)
        _, developer = make_user(admin)
        add_member(admin, project, developer, 2)
    with api(moorage, auth=(maintainer, PASSWORD)) as client:
        rule_id = create(client, project, immutable_rule("v*"))
    with api(moorage, auth=(developer, PASSWORD)) as client:
        assert_error(client.post(f"/projects/{project}/immutabletagrules", json=immutable_rule("x")), 403,
                     "FORBIDDEN")
        assert_error(client.delete(f"/projects/{project}/immutabletagrules/{rule_id}"), 403, "FORBIDDEN")
    with api(moorage, auth=None) as anonymous:
        assert_error(anonymous.get(f"/projects/{project}/immutabletagrules"), 401, "UNAUTHORIZED")


def test_an_immutable_tag_cannot_be_moved_or_deleted_by_any_client(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        repo = f"{project}/app"
        v1 = push_image(registry, repo, "v1.0")
        push_image(registry, repo, "latest")
        rule_id = create(admin, project, immutable_rule("v*", "app"))

        # Moving the tag: a push of other content under it.
        other = registry.get(f"/v2/{repo}/manifests/latest", headers={"Accept": oci.OCI_MANIFEST})
        refused = registry.put(f"/v2/{repo}/manifests/v1.0", content=other.content,
                               headers={"Content-Type": other.headers["content-type"]})
        oci.assert_error(refused, 403, "DENIED")
        assert f"immutable tag rule {rule_id}" in refused.json()["errors"][0]["message"]
        same = registry.get(f"/v2/{repo}/manifests/v1.0", headers={"Accept": oci.OCI_MANIFEST})
        assert same.headers["docker-content-digest"] == v1, "the tag did not move"
        # Re-pushing its own content is no move; a new tag and a tag no rule matches move freely.
        again = registry.put(f"/v2/{repo}/manifests/v1.0", content=same.content,
                             headers={"Content-Type": same.headers["content-type"]})
        assert again.status_code == 201
        push_image(registry, repo, "v2.0")
        push_image(registry, repo, "latest")

        # Deleting it over /v2, by tag or by the digest it names.
        oci.assert_error(registry.delete(f"/v2/{repo}/manifests/v1.0"), 403, "DENIED")
        oci.assert_error(registry.delete(f"/v2/{repo}/manifests/{v1}"), 403, "DENIED")
        # And over the API.
        assert_error(admin.delete(f"/projects/{project}/repositories/app/artifacts/{v1}/tags/v1.0"), 412,
                     "PRECONDITION")
        refused = admin.delete(f"/projects/{project}/repositories/app/artifacts/{v1}")
        assert_error(refused, 412, "PRECONDITION")
        assert f"immutable tag rule {rule_id}" in refused.json()["errors"][0]["message"]
        assert_error(admin.delete(f"/projects/{project}/repositories/app"), 412, "PRECONDITION")

        # Listings tell which tags are immutable.
        artifacts = admin.get(f"/projects/{project}/repositories/app/artifacts",
                              params={"with_immutable_status": "true"}).json()
        flags = {t["name"]: t["immutable"] for a in artifacts for t in a["tags"]}
        assert flags == {"v1.0": True, "v2.0": True, "latest": False}
        tags = admin.get(f"/projects/{project}/repositories/app/artifacts/{v1}/tags").json()
        assert [(t["name"], t["immutable"]) for t in tags] == [("v1.0", True)]

        # Disabled, the rule holds nothing.
        assert admin.put(f"/projects/{project}/immutabletagrules/{rule_id}",
                         json={"disabled": True}).status_code == 200
        assert registry.delete(f"/v2/{repo}/manifests/v1.0").status_code == 202
        assert admin.delete(f"/projects/{project}/repositories/app").status_code == 200


def test_a_child_of_an_index_with_an_immutable_tag_cannot_be_deleted(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        repo = f"{project}/multi"
        index = push_index(registry, repo, [{"platform": {"os": "linux", "architecture": "amd64"}}], "v1")
        child = registry.get(f"/v2/{repo}/manifests/{index}", headers={"Accept": OCI_INDEX}).json()[
            "manifests"][0]["digest"]
        create(admin, project, immutable_rule("v1"))
        oci.assert_error(registry.delete(f"/v2/{repo}/manifests/{child}"), 403, "DENIED")
        assert_error(admin.delete(f"/projects/{project}/repositories/multi/artifacts/{child}"), 412, "PRECONDITION")
        assert registry.get(f"/v2/{repo}/manifests/{child}").status_code == 200

