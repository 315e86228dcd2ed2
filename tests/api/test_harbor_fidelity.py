"""What Harbor's API shows and clients rely on: tagged/untagged filters, an index with its references (and its
untagged children not beside it), images' extra_attrs, pull counts and times, real tag ids, newest-first
listings, the audit log of project, member and robot changes, and the CVE allowlist."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.harbor import (
    NEVER,
    add_member,
    api,
    assert_error,
    make_project,
    make_robot,
    make_user,
    push_image,
    push_index,
    push_with_config,
    unique,
)
from tests.support import oci
from tests.support.moorage import MoorageServer
from tests.support.procs import wait_until


def _digests(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [a["digest"] for a in response.json()]


def test_tags_star_and_nil_keep_tagged_or_untagged_artifacts(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        tagged = push_image(registry, f"{project}/app", "v1")
        untagged, _ = oci.push_image(registry, f"{project}/app")
        base = f"/projects/{project}/repositories/app/artifacts"
        everything = admin.get(base)
        # Newest push first, as Harbor lists artifacts.
        assert _digests(everything) == [untagged, tagged] and everything.headers["x-total-count"] == "2"
        only_tagged = admin.get(base, params={"q": "tags=*"})
        assert _digests(only_tagged) == [tagged] and only_tagged.headers["x-total-count"] == "1"
        only_untagged = admin.get(base, params={"q": "tags=nil"})
        assert _digests(only_untagged) == [untagged] and only_untagged.headers["x-total-count"] == "1"
        assert _digests(admin.get(base, params={"q": "tags=~v"})) == [tagged]
        assert _digests(admin.get(base, params={"q": "tags=v1"})) == [tagged]
        assert _digests(admin.get(base, params={"q": "tags=nothing-like-it"})) == []
        assert _digests(admin.get(base, params={"sort": "push_time"})) == [tagged, untagged]
        assert_error(admin.get(base, params={"q": "base=everything"}), 400, "BAD_REQUEST")


def test_an_index_lists_its_references_and_hides_its_untagged_children(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        index = push_index(registry, f"{project}/multi", [
            {"platform": {"architecture": "amd64", "os": "linux"}},
            {"platform": {"architecture": "arm64", "os": "linux", "variant": "v8", "os.version": "6.1"},
             "annotations": {"org.example.note": "the arm one"}, "urls": ["https://mirror.example/blob"]},
        ], "latest")
        base = f"/projects/{project}/repositories/multi/artifacts"
        listed = admin.get(base)
        assert _digests(listed) == [index] and listed.headers["x-total-count"] == "1"
        shown = listed.json()[0]
        assert shown["type"] == "IMAGE" and shown["manifest_media_type"] == oci.OCI_INDEX
        references = shown["references"]
        assert [r["platform"]["architecture"] for r in references] == ["amd64", "arm64"]
        assert references[1]["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8",
                                             "os.version": "6.1"}
        assert references[1]["annotations"] == {"org.example.note": "the arm one"}
        assert references[1]["urls"] == ["https://mirror.example/blob"]
        for reference in references:
            assert reference["parent_id"] == shown["id"]
            child = admin.get(f"{base}/{reference['child_digest']}").json()
            assert child["id"] == reference["child_id"] != shown["id"]
            assert child["references"] == []
        assert admin.get(f"/projects/{project}/repositories/multi").json()["artifact_count"] == 1
        assert _digests(admin.get(base, params={"q": "tags=nil"})) == []
        every = admin.get(base, params={"q": "base=*"})
        assert set(_digests(every)) == {index, *(r["child_digest"] for r in references)}
        assert admin.get(f"{base}/latest").json()["references"] == references
        # A child tagged on its own is an artifact of its own again.
        arm = references[1]["child_digest"]
        assert admin.post(f"{base}/{arm}/tags", json={"name": "arm"}).status_code == 201
        assert _digests(admin.get(base)) == [index, arm] or _digests(admin.get(base)) == [arm, index]
        assert admin.get(f"/projects/{project}/repositories/multi").json()["artifact_count"] == 2


def test_an_images_extra_attrs_come_from_its_config(moorage: MoorageServer) -> None:
    config: dict[str, Any] = {"architecture": "arm64", "os": "linux", "created": "2024-05-01T10:00:00Z",
                              "config": {"Env": ["PATH=/bin"], "Labels": {"maintainer": "ops@example.com"}},
                              "rootfs": {"type": "layers", "diff_ids": []}}
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        push_with_config(registry, f"{project}/app", config, "labelled")
        push_with_config(registry, f"{project}/app", {**config, "author": "Jane Doe"}, "authored")
        base = f"/projects/{project}/repositories/app/artifacts"
        labelled = admin.get(f"{base}/labelled").json()
        assert labelled["extra_attrs"] == {"architecture": "arm64", "os": "linux", "created": "2024-05-01T10:00:00Z",
                                           "config": config["config"], "author": "ops@example.com"}
        assert labelled["media_type"] == oci.OCI_CONFIG and labelled["manifest_media_type"] == oci.OCI_MANIFEST
        assert labelled["type"] == "IMAGE"
        assert admin.get(f"{base}/authored").json()["extra_attrs"]["author"] == "Jane Doe"
        listed = {a["tags"][0]["name"]: a for a in admin.get(base).json()}
        assert listed["labelled"]["extra_attrs"] == labelled["extra_attrs"]


def test_pulls_are_counted_in_batches_not_per_request(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        digest = push_image(registry, f"{project}/app", "v1")
        base = f"/projects/{project}/repositories/app/artifacts"
        assert admin.post(f"{base}/v1/tags", json={"name": "never-pulled"}).status_code == 201
        before = admin.get(f"{base}/v1").json()
        assert before["pull_time"] == NEVER
        for reference in ("v1", "v1", "v1", digest, digest):
            assert registry.get(f"/v2/{project}/app/manifests/{reference}").status_code == 200
        assert registry.head(f"/v2/{project}/app/manifests/v1").status_code == 200  # a HEAD is no pull

        def counted() -> dict[str, Any] | None:
            repo = admin.get(f"/projects/{project}/repositories/app").json()
            return repo if repo["pull_count"] == 5 else None

        repo = wait_until(counted, timeout=5, what="five pulls counted on the repository")
        assert isinstance(repo, dict)
        after = admin.get(f"{base}/v1").json()
        assert after["pull_time"] != NEVER and after["pull_time"] >= after["push_time"]
        tags = {t["name"]: t for t in after["tags"]}
        assert tags["v1"]["pull_time"] != NEVER and tags["never-pulled"]["pull_time"] == NEVER
        found = admin.get("/search", params={"q": f"{project}/app"}).json()["repository"]
        assert [r["pull_count"] for r in found] == [5]
        # The counts arrive with the audit entries of the same batch, not before them.
        pulls = admin.get(f"/projects/{project}/logs", params={"q": "operation=pull"})
        assert pulls.headers["x-total-count"] == "5"


def test_tags_have_real_ids_that_stay_put(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        push_image(registry, f"{project}/app", "v1")
        base = f"/projects/{project}/repositories/app/artifacts"
        for name in ("v2", "v3"):
            assert admin.post(f"{base}/v1/tags", json={"name": name}).status_code == 201
        tags = admin.get(f"{base}/v1/tags").json()
        ids = {t["name"]: t["id"] for t in tags}
        assert len(set(ids.values())) == 3 and all(isinstance(i, int) and i > 0 for i in ids.values())
        assert all(t["artifact_id"] == admin.get(f"{base}/v1").json()["id"] for t in tags)
        # Moving v1 to a new image keeps the tag (and its id); the old image keeps v2 and v3.
        moved = push_image(registry, f"{project}/app", "v1")
        now = admin.get(f"{base}/v1").json()
        assert now["digest"] == moved and [(t["name"], t["id"]) for t in now["tags"]] == [("v1", ids["v1"])]
        other = push_image(registry, f"{project}/other", "v1")
        other_tag = admin.get(f"/projects/{project}/repositories/other/artifacts/{other}").json()["tags"][0]
        assert other_tag["id"] not in ids.values()


def test_repositories_are_listed_newest_first(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        for name in ("b-first", "a-second", "c-third"):
            push_image(registry, f"{project}/{name}", "v1")
        newest_first = [f"{project}/c-third", f"{project}/a-second", f"{project}/b-first"]
        assert [r["name"] for r in admin.get(f"/projects/{project}/repositories").json()] == newest_first
        everywhere = admin.get("/repositories", params={"q": f"name=~{project}/", "page_size": 100}).json()
        assert [r["name"] for r in everywhere] == newest_first
        by_name = admin.get(f"/projects/{project}/repositories", params={"sort": "name"}).json()
        assert [r["name"] for r in by_name] == sorted(newest_first)


def _logged(admin: httpx.Client, resource: str) -> list[tuple[str, str]]:
    entries = admin.get("/audit-logs", params={"q": f"resource={resource}", "page_size": 100, "sort": "op_time"})
    return [(e["operation"], e["resource_type"]) for e in entries.json()]


def test_project_member_and_robot_changes_are_audited(moorage: MoorageServer) -> None:
    name = {"X-Is-Resource-Name": "true"}
    with api(moorage) as admin:
        project = make_project(admin)
        assert _logged(admin, project) == [("create", "project")]
        _, user = make_user(admin)
        member = add_member(admin, project, user, 3)
        assert admin.put(f"/projects/{project}/members/{member}", json={"role_id": 2}, headers=name).status_code == 200
        assert admin.delete(f"/projects/{project}/members/{member}", headers=name).status_code == 200
        assert _logged(admin, user) == [("create", "user"), ("create", "project_member"),
                                        ("update", "project_member"), ("delete", "project_member")]
        robot = make_robot(admin, project, ["pull"])
        assert admin.put(f"/robots/{robot['id']}", json={"description": "nightly"}).status_code == 200
        assert admin.delete(f"/robots/{robot['id']}").status_code == 200
        assert _logged(admin, robot["name"]) == [("create", "robot"), ("update", "robot"), ("delete", "robot")]
        # A project administrator sees the project's own entries in its log.
        in_project = admin.get(f"/projects/{project}/logs", params={"page_size": 100}).json()
        assert {(e["operation"], e["resource_type"]) for e in in_project} >= {
            ("create", "project"), ("create", "project_member"), ("create", "robot")}
        assert admin.delete(f"/projects/{project}", headers=name).status_code == 200
        assert _logged(admin, project) == [("create", "project"), ("delete", "project")]
        assert all(e["username"] == "admin" for e in admin.get("/audit-logs", params={
            "q": f"resource={project}", "page_size": 100}).json())


def test_the_cve_allowlist_is_kept(moorage: MoorageServer) -> None:
    name = {"X-Is-Resource-Name": "true"}
    with api(moorage) as admin:
        project = unique("cve")
        created = admin.post("/projects", json={"project_name": project, "cve_allowlist": {
            "items": [{"cve_id": "CVE-2024-3094"}, {"cve_id": "CVE-2021-44228"}, {"cve_id": "CVE-2024-3094"}],
            "expires_at": 1_900_000_000}})
        assert created.status_code == 201, created.text
        got = admin.get(f"/projects/{project}", headers=name).json()["cve_allowlist"]
        assert [i["cve_id"] for i in got["items"]] == ["CVE-2024-3094", "CVE-2021-44228"]
        assert got["expires_at"] == 1_900_000_000 and got["project_id"] == got["id"]
        # An update that leaves the allowlist out leaves it be; one that gives it replaces it.
        assert admin.put(f"/projects/{project}", json={"metadata": {"auto_scan": "true"}},
                         headers=name).status_code == 200
        assert admin.get(f"/projects/{project}", headers=name).json()["cve_allowlist"]["items"] == got["items"]
        assert admin.put(f"/projects/{project}", json={"cve_allowlist": {"items": [{"cve_id": "CVE-2023-4863"}]}},
                         headers=name).status_code == 200
        replaced = admin.get(f"/projects/{project}", headers=name).json()["cve_allowlist"]
        assert [i["cve_id"] for i in replaced["items"]] == ["CVE-2023-4863"] and "expires_at" not in replaced
        for bad in ({"items": [{"cve_id": ""}]}, {"items": [{"cve_id": "not a cve id"}]}, {"expires_at": -5},
                    {"items": "CVE-2024-3094"}):
            assert_error(admin.put(f"/projects/{project}", json={"cve_allowlist": bad}, headers=name),
                         400, "BAD_REQUEST")
        fresh = admin.get(f"/projects/{make_project(admin)}", headers=name).json()["cve_allowlist"]
        assert fresh["items"] == [] and "expires_at" not in fresh
