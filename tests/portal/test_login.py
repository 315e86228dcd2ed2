"""Signing in and out of the portal, and what a session protects: keyboard-only sign-in, logout ending the
session for good, forged form posts refused, administration hidden from users, sessions that expire."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.portal.conftest import Admin, new_user_context, sign_in
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.procs import running, wait_until


def test_signing_in_with_the_keyboard_alone(page: Page, portal_server: MoorageServer, screenshots: Path) -> None:
    page.goto(portal_server.url + "/")
    expect(page).to_have_url(re.compile("/portal/login"))
    page.screenshot(path=screenshots / "login.png")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()
    # The first Tab reaches the skip link, which jumps past the navigation.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(page: Page,
                                                                        portal_server: MoorageServer) -> None:
    page.goto(portal_server.url + "/portal/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid username or password.")
    expect(page.get_by_label("Username")).to_have_value("admin")


def test_logout_ends_the_session_even_for_a_copied_cookie(browser: Browser, portal_server: MoorageServer) -> None:
    context = new_user_context(browser, portal_server)
    page = context.new_page()
    sign_in(page, portal_server, "admin", ADMIN_PASSWORD)
    cookie = next(c for c in context.cookies() if c["name"] == "moorage_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to moorage")).to_be_visible()
    # Whoever kept the cookie gets nothing with it: the session is gone from the store, not only the browser.
    with httpx.Client(base_url=portal_server.url, cookies={"moorage_session": cookie["value"]}) as client:
        response = client.get("/portal/projects")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/portal/login")
    context.close()


def test_a_forged_post_without_the_csrf_token_is_refused(page: Page, portal_server: MoorageServer,
                                                          admin_api: Admin) -> None:
    sign_in(page, portal_server, "admin", ADMIN_PASSWORD)
    # The browser's cookies go along (as they would from a page another site made), the token does not.
    forged = page.request.post(f"{portal_server.url}/portal/projects", form={"project_name": "forged"})
    assert forged.status == 403
    assert "CSRF" in forged.text()
    # The right token from another origin is refused too.
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    foreign = page.request.post(f"{portal_server.url}/portal/projects", form={
        "project_name": "forged", "csrf_token": token}, headers={"Origin": "https://evil.example"})
    assert foreign.status == 403
    assert not admin_api.project_exists("forged")
    # With both, the same form works.
    good = page.request.post(f"{portal_server.url}/portal/projects", form={
        "project_name": "not-forged", "csrf_token": token, "visibility": "private"})
    assert good.ok
    assert admin_api.project_exists("not-forged")


def test_a_user_sees_no_administration(browser: Browser, portal_server: MoorageServer, admin_api: Admin) -> None:
    admin_api.user("ursula", "Ursula-Passw0rd-1")
    page = new_user_context(browser, portal_server).new_page()
    sign_in(page, portal_server, "ursula", "Ursula-Passw0rd-1")
    expect(page.get_by_role("link", name="Administration")).to_have_count(0)
    for path in ("/portal/admin/users", "/portal/admin/robots", "/portal/admin/audit", "/portal/admin/gc"):
        response = page.goto(portal_server.url + path)
        assert response is not None and response.status == 403, path
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    page.context.close()


@pytest.fixture(scope="module")
def short_sessions(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    yield from running(lambda: MoorageServer(tmp_path_factory.mktemp("portal-short"), workers=1,
                                             env={"MOORAGE_PORTAL_SESSION_MINUTES": "0.05"}))


def test_a_session_expires(page: Page, short_sessions: MoorageServer) -> None:
    sign_in(page, short_sessions, "admin", ADMIN_PASSWORD)

    def signed_out() -> bool:
        page.goto(short_sessions.url + "/portal/projects")
        return "/portal/login" in page.url

    wait_until(signed_out, timeout=30, what="the 3-second portal session to expire", interval=0.5)
    expect(page.get_by_role("heading", name="Sign in to moorage")).to_be_visible()
