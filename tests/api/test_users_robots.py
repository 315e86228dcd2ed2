"""Users and robot accounts through /api/v2.0."""

from __future__ import annotations

import httpx

from tests.api.harbor import PASSWORD, api, assert_error, make_project, make_robot, make_user, unique
from tests.support.moorage import MoorageServer


def test_user_crud_search_current_and_password(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        uid, name = make_user(admin)
        assert admin.get(f"/users/{uid}").json()["username"] == name
        assert name in [u["username"] for u in admin.get("/users", params={"q": f"username=~{name}"}).json()]
        assert admin.put(f"/users/{uid}", json={"realname": "Li Dabai"}).status_code == 200
        assert admin.get(f"/users/{uid}").json()["realname"] == "Li Dabai"
        assert_error(admin.post("/users", json={"username": name, "password": PASSWORD}), 409, "CONFLICT")
        assert_error(admin.post("/users", json={"username": unique("u"), "password": "short"}), 400, "BAD_REQUEST")
        assert_error(admin.post("/users", json={"username": "bad$name", "password": PASSWORD}), 400, "BAD_REQUEST")
        assert_error(admin.post("/users", json={"username": unique("u"), "password": PASSWORD, "email": "x"}),
                     400, "BAD_REQUEST")
        assert_error(admin.post("/users", json={"password": PASSWORD}), 400, "BAD_REQUEST")
        assert_error(admin.get("/users/999999"), 404, "NOT_FOUND")
    with api(moorage, auth=(name, PASSWORD)) as me:
        assert me.get("/users/current").json()["user_id"] == uid
        assert me.get("/users/search", params={"username": name[:4]}).json()[0].keys() == {"user_id", "username"}
        assert_error(me.get("/users/search"), 400, "BAD_REQUEST")
        assert_error(me.get("/users"), 403, "FORBIDDEN")
        assert_error(me.post("/users", json={"username": unique("u"), "password": PASSWORD}), 403, "FORBIDDEN")
        assert_error(me.get("/users/1"), 403, "FORBIDDEN")
        assert_error(me.put(f"/users/{uid}/password", json={"old_password": "Wrong-Passw0rd",
                                                            "new_password": "New-Passw0rd1"}), 403, "FORBIDDEN")
        assert_error(me.put(f"/users/{uid}/password", json={"old_password": PASSWORD, "new_password": "weak"}),
                     400, "BAD_REQUEST")
        assert me.put(f"/users/{uid}/password", json={"old_password": PASSWORD,
                                                      "new_password": "New-Passw0rd1"}).status_code == 200
    with api(moorage, auth=(name, "New-Passw0rd1")) as me:
        assert me.get("/users/current").status_code == 200
    with api(moorage, auth=None) as anonymous:
        assert_error(anonymous.get("/users/current"), 401, "UNAUTHORIZED")
    with api(moorage) as admin:
        assert admin.put(f"/users/{uid}/sysadmin", json={"sysadmin_flag": True}).status_code == 200
        assert admin.get(f"/users/{uid}").json()["sysadmin_flag"] is True
        assert admin.put(f"/users/{uid}", json={"disabled": True}).status_code == 200
        with api(moorage, auth=(name, "New-Passw0rd1")) as disabled:
            assert_error(disabled.get("/users/current"), 401, "UNAUTHORIZED")
        assert admin.delete(f"/users/{uid}").status_code == 200
        assert_error(admin.get(f"/users/{uid}"), 404, "NOT_FOUND")
        assert_error(admin.delete("/users/1"), 403, "FORBIDDEN")


def test_robot_lifecycle(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        robot = make_robot(admin, project, ["pull"], description="ci")
        assert robot["name"].startswith(f"robot${project}+") and robot["secret"] and robot["expires_at"] == -1
        got = admin.get(f"/robots/{robot['id']}").json()
        assert (got["name"] == robot["name"] and got["level"] == "project" and "secret" not in got) or not got.get(
            "secret")
        listed = admin.get("/robots", params={"q": "Level=project", "page_size": 100}).json()
        assert robot["id"] in [r["id"] for r in listed]
        assert httpx.get(f"{moorage.url}/api/v2.0/users/current", auth=(robot["name"], robot["secret"])) \
            .status_code == 403  # a robot authenticates, but has no user profile
        new = admin.patch(f"/robots/{robot['id']}", json={}).json()["secret"]
        assert new != robot["secret"]
        assert_error(httpx.get(f"{moorage.url}/api/v2.0/projects/{project}",
                               headers={"X-Is-Resource-Name": "true"}, auth=(robot["name"], robot["secret"])),
                     401, "UNAUTHORIZED")
        assert httpx.get(f"{moorage.url}/api/v2.0/projects/{project}", headers={"X-Is-Resource-Name": "true"},
                         auth=(robot["name"], new)).status_code == 200
        assert admin.put(f"/robots/{robot['id']}", json={"disable": True, "description": "off"}).status_code == 200
        assert admin.get(f"/robots/{robot['id']}").json()["disable"] is True
        assert admin.delete(f"/robots/{robot['id']}").status_code == 200
        assert_error(admin.get(f"/robots/{robot['id']}"), 404, "NOT_FOUND")


def test_robot_validation_and_permissions(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        other = make_project(admin)
        _, user = make_user(admin)
        perm = [{"kind": "project", "namespace": project, "access": [{"resource": "repository", "action": "pull"}]}]
        assert_error(admin.post("/robots", json={"name": "Bad Name", "level": "project", "permissions": perm}),
                     400, "BAD_REQUEST")
        assert_error(admin.post("/robots", json={"name": "x", "level": "galaxy", "permissions": perm}),
                     400, "BAD_REQUEST")
        assert_error(admin.post("/robots", json={"name": "x", "level": "project", "permissions": []}),
                     400, "BAD_REQUEST")
        assert_error(admin.post("/robots", json={"name": "x", "level": "project", "duration": -5,
                                                 "permissions": perm}), 400, "BAD_REQUEST")
        two = [*perm, {**perm[0], "namespace": other}]
        assert_error(admin.post("/robots", json={"name": "x", "level": "project", "permissions": two}),
                     400, "BAD_REQUEST")
        missing = [{**perm[0], "namespace": "no-such-" + project}]
        assert_error(admin.post("/robots", json={"name": "x", "level": "project", "permissions": missing}),
                     404, "NOT_FOUND")
        name = unique("dup")
        assert admin.post("/robots", json={"name": name, "level": "project", "permissions": perm}).status_code == 201
        assert_error(admin.post("/robots", json={"name": name, "level": "project", "permissions": perm}),
                     409, "CONFLICT")
        system = admin.post("/robots", json={"name": unique("sys"), "level": "system", "duration": 1,
                                             "permissions": perm})
        assert system.status_code == 201 and system.json()["name"].startswith("robot$sys-")
        assert system.json()["expires_at"] > 0
    with api(moorage, auth=(user, PASSWORD)) as someone:
        assert_error(someone.post("/robots", json={"name": "x", "level": "project", "permissions": perm}),
                     403, "FORBIDDEN")
        assert_error(someone.post("/robots", json={"name": "x", "level": "system", "permissions": perm}),
                     403, "FORBIDDEN")
        assert_error(someone.get(f"/robots/{system.json()['id']}"), 403, "FORBIDDEN")
    with api(moorage, auth=None) as anonymous:
        assert_error(anonymous.get("/robots"), 401, "UNAUTHORIZED")
