"""Projects and members through /api/v2.0 against a live two-worker server."""

from __future__ import annotations

from tests.api.harbor import PASSWORD, add_member, api, assert_error, make_project, make_user, push_image, unique
from tests.support.moorage import MoorageServer


def test_create_get_update_head_delete_project(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        name = unique("proj")
        r = admin.post("/projects", json={"project_name": name, "metadata": {"public": "false"}},
                       headers={"X-Resource-Name-In-Location": "true"})
        assert r.status_code == 201 and r.headers["location"] == f"/api/v2.0/projects/{name}"
        assert r.headers["x-request-id"]
        assert admin.head("/projects", params={"project_name": name}).status_code == 200
        assert_error(admin.head("/projects", params={"project_name": "nope-" + name}), 404, "NOT_FOUND")
        got = admin.get(f"/projects/{name}").json()
        assert got["name"] == name and got["metadata"]["public"] == "false" and got["owner_name"] == "admin"
        by_id = admin.get(f"/projects/{got['project_id']}").json()
        assert by_id["name"] == name
        assert admin.put(f"/projects/{name}", json={"metadata": {"public": "true"}},
                         headers={"X-Is-Resource-Name": "true"}).status_code == 200
        assert admin.get(f"/projects/{name}", headers={"X-Is-Resource-Name": "true"}).json()["metadata"]["public"] \
            == "true"
        assert admin.get(f"/projects/{name}/summary", headers={"X-Is-Resource-Name": "true"}).json()["repo_count"] == 0
        assert admin.delete(f"/projects/{name}", headers={"X-Is-Resource-Name": "true"}).status_code == 200
        assert_error(admin.get(f"/projects/{name}", headers={"X-Is-Resource-Name": "true"}), 404, "NOT_FOUND")


def test_project_validation_errors(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        assert_error(admin.post("/projects", json={"project_name": "Bad_Name!"}), 400, "BAD_REQUEST")
        assert_error(admin.post("/projects", json={"project_name": "ok-name", "metadata": {"public": "yes"}}),
                     400, "BAD_REQUEST")
        assert_error(admin.post("/projects", content=b"{not json"), 400, "BAD_REQUEST")
        name = make_project(admin)
        assert_error(admin.post("/projects", json={"project_name": name}), 409, "CONFLICT")
        assert_error(admin.get("/projects", params={"page_size": "1000"}), 400, "BAD_REQUEST")
        assert_error(admin.get("/projects", params={"page": "x"}), 400, "BAD_REQUEST")



def test_a_body_nested_too_deep_is_a_bad_request_not_a_crash(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        # 100,000 levels once exhausted the parser's recursion: a 500 and a traceback.
        r = admin.post("/projects", content=b"[" * 100_000 + b"]" * 100_000,
                       headers={"Content-Type": "application/json"})
        assert_error(r, 400, "BAD_REQUEST")
        assert "deeper than 64 levels" in r.json()["errors"][0]["message"]
        name = unique("deep")
        deep = b'{"project_name": "' + name.encode() + b'", "metadata": {"x": ' + b"[" * 1000 + b"]" * 1000 + b"}}"
        assert_error(admin.post("/projects", content=deep, headers={"Content-Type": "application/json"}),
                     400, "BAD_REQUEST")
        assert_error(admin.get(f"/projects/{name}", headers={"X-Is-Resource-Name": "true"}), 404, "NOT_FOUND")

def test_project_permissions(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        private = make_project(admin)
        public = make_project(admin, public=True)
        _, user = make_user(admin)
    with api(moorage, auth=None) as anonymous:
        assert_error(anonymous.post("/projects", json={"project_name": unique("x")}), 401, "UNAUTHORIZED")
        assert anonymous.get(f"/projects/{public}", headers={"X-Is-Resource-Name": "true"}).status_code == 200
        assert_error(anonymous.get(f"/projects/{private}", headers={"X-Is-Resource-Name": "true"}), 401,
                     "UNAUTHORIZED")
        names = [p["name"] for p in anonymous.get("/projects", params={"page_size": 100}).json()]
        assert public in names and private not in names
    with api(moorage, auth=(user, PASSWORD)) as someone:
        assert_error(someone.post("/projects", json={"project_name": unique("x")}), 403, "FORBIDDEN")
        assert_error(someone.get(f"/projects/{private}", headers={"X-Is-Resource-Name": "true"}), 403, "FORBIDDEN")
        assert_error(someone.delete(f"/projects/{public}", headers={"X-Is-Resource-Name": "true"}), 403, "FORBIDDEN")
    with api(moorage, auth=(user, "wrong-Passw0rd")) as wrong:
        assert_error(wrong.get("/projects"), 401, "UNAUTHORIZED")


def test_project_list_filters_pagination_and_link(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        tag = unique("flt")
        for i in range(3):
            make_project(admin, public=i == 0, name=f"{tag}-{i}")
        r = admin.get("/projects", params={"name": tag, "page_size": 2, "sort": "name"})
        assert r.headers["x-total-count"] == "3"
        assert [p["name"] for p in r.json()] == [f"{tag}-0", f"{tag}-1"]
        assert 'rel="next"' in r.headers["link"] and "page=2" in r.headers["link"]
        r2 = admin.get("/projects", params={"name": tag, "page_size": 2, "page": 2, "sort": "name"})
        assert [p["name"] for p in r2.json()] == [f"{tag}-2"] and 'rel="prev"' in r2.headers["link"]
        r3 = admin.get("/projects", params={"name": tag, "page_size": 1, "page": 2})
        assert " , " in r3.headers["link"]
        assert [p["name"] for p in admin.get("/projects", params={"name": tag, "public": "true"}).json()] == \
            [f"{tag}-0"]
        assert [p["name"] for p in admin.get("/projects", params={"q": f"name=~{tag}-2"}).json()] == [f"{tag}-2"]
        assert len(admin.get("/projects", params={"q": f"name=~{tag},public=false"}).json()) == 2
        assert_error(admin.get("/projects", params={"q": "nosuchfield=1"}), 400, "BAD_REQUEST")


def test_delete_refused_while_project_holds_repositories(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        name = make_project(admin)
        with moorage.client() as registry:
            push_image(registry, f"{name}/app", "v1")
        assert_error(admin.delete(f"/projects/{name}", headers={"X-Is-Resource-Name": "true"}), 412, "PRECONDITION")
        assert admin.get(f"/projects/{name}/_deletable", headers={"X-Is-Resource-Name": "true"}).json()[
            "deletable"] is False
        assert admin.delete(f"/projects/{name}/repositories/app").status_code == 200
        assert admin.delete(f"/projects/{name}", headers={"X-Is-Resource-Name": "true"}).status_code == 200


def test_members_crud_and_permissions(moorage: MoorageServer) -> None:
    hdr = {"X-Is-Resource-Name": "true"}
    with api(moorage) as admin:
        project = make_project(admin)
        _, dev = make_user(admin)
        _, guest = make_user(admin)
        dev_mid = add_member(admin, project, dev, 2)
        add_member(admin, project, guest, 3)
        members = admin.get(f"/projects/{project}/members", headers=hdr).json()
        roles = {m["entity_name"]: (m["role_id"], m["role_name"], m["entity_type"]) for m in members}
        assert roles[dev] == (2, "developer", "u") and roles[guest] == (3, "guest", "u")
        assert admin.get(f"/projects/{project}/members/{dev_mid}", headers=hdr).json()["entity_name"] == dev
        assert_error(admin.post(f"/projects/{project}/members", headers=hdr,
                                json={"role_id": 2, "member_user": {"username": dev}}), 409, "CONFLICT")
        assert_error(admin.post(f"/projects/{project}/members", headers=hdr,
                                json={"role_id": 9, "member_user": {"username": dev}}), 400, "BAD_REQUEST")
        assert_error(admin.post(f"/projects/{project}/members", headers=hdr,
                                json={"role_id": 2, "member_user": {"username": "nobody-" + dev}}), 404, "NOT_FOUND")
        assert_error(admin.post(f"/projects/{project}/members", headers=hdr, json={"role_id": 2}), 400, "BAD_REQUEST")
        summary = admin.get(f"/projects/{project}/summary", headers=hdr).json()
        assert summary["developer_count"] == 1 and summary["guest_count"] == 1
    with api(moorage, auth=(guest, PASSWORD)) as as_guest:
        assert as_guest.get(f"/projects/{project}/members", headers=hdr).status_code == 200
        assert_error(as_guest.put(f"/projects/{project}/members/{dev_mid}", headers=hdr, json={"role_id": 1}),
                     403, "FORBIDDEN")
        assert_error(as_guest.delete(f"/projects/{project}/members/{dev_mid}", headers=hdr), 403, "FORBIDDEN")
    with api(moorage) as admin:
        assert admin.put(f"/projects/{project}/members/{dev_mid}", headers=hdr, json={"role_id": 4}).status_code == 200
        assert admin.get(f"/projects/{project}/members/{dev_mid}", headers=hdr).json()["role_name"] == "maintainer"
        assert admin.delete(f"/projects/{project}/members/{dev_mid}", headers=hdr).status_code == 200
        assert_error(admin.get(f"/projects/{project}/members/{dev_mid}", headers=hdr), 404, "NOT_FOUND")
