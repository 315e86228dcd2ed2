"""The portal's browser tests: Playwright (pytest-playwright) driving Debian's chromium against a real
``moorage serve``. Playwright cannot download its own browsers here, so it launches the system binary.

Screenshots of the main pages go to ``build/screenshots/`` (or ``$MOORAGE_SCREENSHOT_DIR``) as artifacts.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.procs import running

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("the portal's browser tests need Debian's chromium: apt-get install chromium "
                    "(scripts/install-test-deps installs it)")
    return {**browser_type_launch_args, "executable_path": chromium, "args": ["--no-sandbox"]}


@pytest.fixture(scope="session")
def portal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    """One registry for the portal tests, two workers: a session opened by one is honoured by the other."""
    yield from running(lambda: MoorageServer(tmp_path_factory.mktemp("portal"), workers=2))


@pytest.fixture(scope="session")
def screenshots() -> Path:
    directory = Path(os.environ.get("MOORAGE_SCREENSHOT_DIR", REPO_ROOT / "build" / "screenshots"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class Admin:
    """The registry's API as the admin, to set the stage a story starts from (the story itself is clicked)."""

    def __init__(self, server: MoorageServer) -> None:
        self.server = server
        self.api = httpx.Client(base_url=f"{server.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30,
                                verify=server.verify)

    def user(self, name: str, password: str) -> None:
        response = self.api.post("/users", json={"username": name, "password": password,
                                                 "email": f"{name}@example.test"})
        assert response.status_code in (201, 409), response.text

    def member(self, project: str, name: str, role_id: int) -> None:
        response = self.api.post(f"/projects/{project}/members", json={"role_id": role_id,
                                                                       "member_user": {"username": name}})
        assert response.status_code in (201, 409), response.text

    def project_exists(self, name: str) -> bool:
        return self.api.head("/projects", params={"project_name": name}).status_code == 200


@pytest.fixture(scope="session")
def admin_api(portal_server: MoorageServer) -> Iterator[Admin]:
    admin = Admin(portal_server)
    try:
        yield admin
    finally:
        admin.api.close()


def sign_in(page: Page, server: MoorageServer, username: str, password: str) -> None:
    page.goto(f"{server.url}/portal/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects", exact=True)).to_be_visible()


def new_user_context(browser: Browser, server: MoorageServer) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    return context
