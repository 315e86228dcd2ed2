"""The portal's sessions and CSRF defences in the fast tier (the app in this process, no browser): what a
session cookie is, what ends a session, which posts are refused, and that sign-in keeps the registry's
lockout rules."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from tests.support.inprocess import InProcessMoorage
from tests.support.moorage import ADMIN_PASSWORD

pytestmark = pytest.mark.fast


def _token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def sign_in(client: httpx.Client, username: str = "admin", password: str = ADMIN_PASSWORD,
            next_page: str = "/portal/projects") -> httpx.Response:
    form = client.get("/portal/login")
    return client.post("/portal/login", data={"csrf_token": _token(form), "username": username,
                                              "password": password, "next": next_page})


def test_a_session_cookie_is_http_only_and_strict_and_logout_ends_it(inprocess: InProcessMoorage) -> None:
    with inprocess.client(auth=None) as browser:
        assert browser.get("/portal/projects").headers["location"] == "/portal/login?next=%2Fportal%2Fprojects"
        signed_in = sign_in(browser)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/portal/projects"
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie  # plain HTTP here
        page = browser.get("/portal/projects")
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        session = browser.cookies["moorage_session"]
        assert browser.post("/portal/logout", data={"csrf_token": _token(page)}).status_code == 303
    with inprocess.client(auth=None, cookies={"moorage_session": session}) as replay:
        assert replay.get("/portal/projects").status_code == 303


def test_changing_the_password_ends_every_session_of_the_account(inprocess: InProcessMoorage) -> None:
    with inprocess.api() as api:
        assert api.post("/users", json={"username": "paula", "password": "Paula-Passw0rd-1"}).status_code in (201, 409)
        user_id = next(u["user_id"] for u in api.get("/users", params={"q": "username=paula"}).json())
    with inprocess.client(auth=None) as browser:
        sign_in(browser, "paula", "Paula-Passw0rd-1")
        assert browser.get("/portal/projects").status_code == 200
        with inprocess.api(auth=("paula", "Paula-Passw0rd-1")) as own:
            changed = own.put(f"/users/{user_id}/password", json={"old_password": "Paula-Passw0rd-1",
                                                                 "new_password": "Paula-Passw0rd-2"})
            assert changed.status_code == 200, changed.text
        assert browser.get("/portal/projects").status_code == 303


def test_posts_without_the_token_or_from_another_site_are_refused(inprocess: InProcessMoorage) -> None:
    with inprocess.client(auth=None) as browser:
        sign_in(browser)
        token = _token(browser.get("/portal/projects"))
        assert browser.post("/portal/projects", data={"project_name": "forged-1"}).status_code == 403
        assert browser.post("/portal/projects", data={"project_name": "forged-1", "csrf_token": "0" * 64}
                            ).status_code == 403
        foreign = browser.post("/portal/projects", data={"project_name": "forged-1", "csrf_token": token},
                               headers={"Origin": "http://evil.test"})
        assert foreign.status_code == 403
        same = browser.post("/portal/projects", data={"project_name": "forged-1", "csrf_token": token},
                            headers={"Origin": inprocess.url})
        assert same.status_code == 303 and same.headers["location"] == "/portal/projects/forged-1"
    with inprocess.client(auth=None) as stranger:
        # A login form posted without the cookie its page set is no login (login CSRF).
        refused = stranger.post("/portal/login", data={"csrf_token": "x", "username": "admin",
                                                       "password": ADMIN_PASSWORD})
        assert refused.status_code == 403 and "moorage_session" not in stranger.cookies


def test_after_sign_in_only_paths_on_this_server_are_followed(inprocess: InProcessMoorage) -> None:
    for target in ("//evil.test/x", "https://evil.test/", "/\\evil.test"):
        with inprocess.client(auth=None) as browser:
            assert sign_in(browser, next_page=target).headers["location"] == "/portal/projects"


def test_sign_in_keeps_the_registrys_lockout(inprocess_factory: Callable[..., InProcessMoorage]) -> None:
    app = inprocess_factory(login_max_failures=3)
    with app.client(auth=None) as browser:
        for _ in range(3):
            assert sign_in(browser, password="wrong-password").status_code == 401
        locked = sign_in(browser)
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    # The same lockout holds for the registry's own Basic authentication from this address.
    with app.api(auth=("admin", ADMIN_PASSWORD)) as api:
        assert api.get("/users/current").status_code == 429


def test_robots_cannot_sign_in_and_pages_answer_html_errors(inprocess: InProcessMoorage) -> None:
    with inprocess.client(auth=None) as browser:
        robot = sign_in(browser, username="robot$anything", password="whatever-secret")
        assert robot.status_code == 403 and "Robot accounts cannot sign in" in robot.text
        sign_in(browser)
        missing = browser.get("/portal/projects/no-such-project")
        assert missing.status_code == 404 and "project no-such-project not found" in missing.text
        assert browser.get("/portal/projects?page=0").status_code == 400
        assert browser.get("/portal/nowhere").status_code == 404


def test_text_no_database_can_look_up_is_refused_in_paths_and_searches(inprocess: InProcessMoorage) -> None:
    with inprocess.client(auth=None) as browser:
        sign_in(browser)
        assert browser.get("/portal/projects/a%00b").status_code == 400
        assert browser.get("/portal/projects", params={"q": "a\x00b"}).status_code == 400
        assert browser.get("/portal/projects", params={"q": "x,name={a}"}).status_code == 200


def test_on_plain_http_the_rescue_page_has_no_ca_and_says_insecure(inprocess: InProcessMoorage) -> None:
    project = inprocess.project("rescue-plain")
    with inprocess.client(auth=None) as browser:
        sign_in(browser)
        page = browser.get(f"/portal/projects/{project}/nodes")
        assert page.status_code == 200
        assert "moorage node-config --runtime containerd --registry moorage.test --insecure --apply" in page.text
        assert "moorage pull-secret rescue-plain --server http://moorage.test --namespace default" in page.text
        assert "BEGIN CERTIFICATE" not in page.text
        assert browser.get("/portal/ca.crt").status_code == 404
