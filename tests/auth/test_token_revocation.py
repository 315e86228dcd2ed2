"""Tokens die with their account's credentials: refresh tokens at once, bearer tokens within seconds.

Found in an attack run: a refresh token issued before a password change still worked after it, and one
issued to a deleted user worked again for a new user of the same name, with the new user's rights.
"""

from __future__ import annotations

import httpx

from tests.api.harbor import PASSWORD, add_member, api, make_project, make_robot, make_user, push_image
from tests.support.moorage import MoorageServer
from tests.support.procs import wait_until

SERVICE = "moorage-registry"


def refresh_token(server: MoorageServer, username: str, password: str) -> str:
    r = httpx.post(f"{server.url}/service/token", data={
        "grant_type": "password", "username": username, "password": password, "service": SERVICE,
        "client_id": "tests", "access_type": "offline"})
    assert r.status_code == 200, r.text
    return str(r.json()["refresh_token"])


def refresh(server: MoorageServer, token: str, scope: str = "") -> httpx.Response:
    return httpx.post(f"{server.url}/service/token", data={
        "grant_type": "refresh_token", "refresh_token": token, "service": SERVICE, "client_id": "tests",
        "scope": scope})


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_grant"


def test_refresh_refused_after_password_change(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        uid, name = make_user(admin)
    token = refresh_token(moorage, name, PASSWORD)
    assert refresh(moorage, token).status_code == 200
    with api(moorage, auth=(name, PASSWORD)) as me:
        r = me.put(f"/users/{uid}/password", json={"old_password": PASSWORD, "new_password": "Changed-Passw0rd"})
        assert r.status_code == 200
    assert_refused(refresh(moorage, token))
    # A refresh token taken after the change works.
    assert refresh(moorage, refresh_token(moorage, name, "Changed-Passw0rd")).status_code == 200


def test_refresh_refused_after_disable_and_for_a_recreated_name(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        uid, name = make_user(admin)
        add_member(admin, project, name, 1)
        token = refresh_token(moorage, name, PASSWORD)
        assert admin.put(f"/users/{uid}", json={"disabled": True}).status_code == 200
        assert_refused(refresh(moorage, token))
        assert admin.put(f"/users/{uid}", json={"disabled": False}).status_code == 200
        assert_refused(refresh(moorage, token))  # re-enabling does not bring old tokens back
        token = refresh_token(moorage, name, PASSWORD)
        assert admin.delete(f"/users/{uid}").status_code == 200
        # Someone else gets the name: the dead account's token must not speak for them.
        r = admin.post("/users", json={"username": name, "password": PASSWORD, "email": f"new-{name}@example.com"})
        assert r.status_code == 201
    assert_refused(refresh(moorage, token, f"repository:{project}/app:pull"))


def test_robot_refresh_refused_after_new_secret(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        robot = make_robot(admin, project, ["pull"])
        token = refresh_token(moorage, robot["name"], robot["secret"])
        assert refresh(moorage, token).status_code == 200
        assert admin.patch(f"/robots/{robot['id']}", json={}).status_code == 200
    assert_refused(refresh(moorage, token))


def bearer(server: MoorageServer, auth: tuple[str, str], scope: str) -> str:
    r = httpx.get(f"{server.url}/service/token", params={"service": SERVICE, "scope": scope}, auth=auth)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def test_bearer_tokens_stop_working_within_seconds_of_a_disable(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        push_image(registry, f"{project}/app", "v1")
        uid, name = make_user(admin)
        add_member(admin, project, name, 3)
        robot = make_robot(admin, project, ["pull"])
        scope = f"repository:{project}/app:pull"
        tokens = {"user": bearer(moorage, (name, PASSWORD), scope),
                  "robot": bearer(moorage, (robot["name"], robot["secret"]), scope)}
        url = f"{moorage.url}/v2/{project}/app/manifests/v1"

        def status(kind: str) -> int:
            return httpx.get(url, headers={"Authorization": f"Bearer {tokens[kind]}"}).status_code

        assert status("user") == 200 and status("robot") == 200
        assert admin.put(f"/users/{uid}", json={"disabled": True}).status_code == 200
        assert admin.put(f"/robots/{robot['id']}", json={"disable": True}).status_code == 200
        # Every worker process answers alike once its few seconds of caching are over.
        for kind in tokens:
            wait_until(lambda k=kind: all(status(k) == 401 for _ in range(4)), timeout=15,
                       what=f"the disabled {kind}'s token to be refused")
        r = httpx.get(url, headers={"Authorization": f"Bearer {tokens['user']}"})
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
        assert "log in again" in r.json()["errors"][0]["message"]
