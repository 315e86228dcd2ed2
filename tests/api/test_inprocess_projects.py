"""Harbor's project API in the fast tier: the app in this process (tests.support.inprocess), driven with the
same helpers (tests.api.harbor) as the real-server suites beside this module."""

from __future__ import annotations

import pytest

from tests.api.harbor import PASSWORD, add_member, assert_error, make_project, make_user, push_image, unique
from tests.support.inprocess import InProcessMoorage

pytestmark = pytest.mark.fast


def test_create_then_list_get_and_head_a_project(inprocess: InProcessMoorage) -> None:
    with inprocess.api() as admin:
        name = unique("proj")
        created = admin.post("/projects", json={"project_name": name, "metadata": {"public": "true"}},
                             headers={"X-Resource-Name-In-Location": "true"})
        assert created.status_code == 201, created.text
        assert created.headers["location"] == f"/api/v2.0/projects/{name}"
        assert created.headers["x-request-id"]

        listed = admin.get("/projects", params={"name": name})
        assert listed.status_code == 200, listed.text
        assert [p["name"] for p in listed.json()] == [name]
        assert int(listed.headers["x-total-count"]) == 1
        everything = [p["name"] for p in admin.get("/projects", params={"page_size": 100}).json()]
        assert name in everything

        got = admin.get(f"/projects/{name}", headers={"X-Is-Resource-Name": "true"}).json()
        assert got["name"] == name and got["metadata"]["public"] == "true" and got["owner_name"] == "admin"
        assert admin.head("/projects", params={"project_name": name}).status_code == 200
        assert_error(admin.head("/projects", params={"project_name": "nope-" + name}), 404, "NOT_FOUND")


def test_bad_project_requests_are_refused_with_what_to_fix(inprocess: InProcessMoorage) -> None:
    with inprocess.api() as admin:
        assert_error(admin.post("/projects", json={"project_name": "Bad_Name!"}), 400, "BAD_REQUEST")
        assert_error(admin.post("/projects", content=b"{not json"), 400, "BAD_REQUEST")
        name = make_project(admin)
        assert_error(admin.post("/projects", json={"project_name": name}), 409, "CONFLICT")
        assert_error(admin.get("/projects", params={"page_size": "1000"}), 400, "BAD_REQUEST")
    with inprocess.api(auth=None) as anonymous:
        assert_error(anonymous.post("/projects", json={"project_name": unique("anon")}), 401, "UNAUTHORIZED")


def test_a_member_pushes_and_the_project_counts_the_repository(inprocess: InProcessMoorage) -> None:
    with inprocess.api() as admin:
        project = make_project(admin)
        _, developer = make_user(admin)
        add_member(admin, project, developer, 2)
    with inprocess.client(auth=(developer, PASSWORD)) as registry:
        push_image(registry, f"{project}/app", "v1")
    with inprocess.api() as admin:
        summary = admin.get(f"/projects/{project}/summary", headers={"X-Is-Resource-Name": "true"})
        assert summary.json()["repo_count"] == 1
        repositories = admin.get(f"/projects/{project}/repositories").json()
        assert [r["name"] for r in repositories] == [f"{project}/app"]
