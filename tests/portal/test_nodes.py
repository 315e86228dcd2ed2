"""The portal over the registry's own TLS, and its rescue page for nodes that cannot pull: the CA (shown and
downloadable), the ``moorage node-config`` line per runtime and the ``moorage pull-secret`` line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.portal.conftest import sign_in
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.procs import running


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    yield from running(lambda: MoorageServer(tmp_path_factory.mktemp("portal-tls"), workers=1, tls=True))


def test_over_tls_the_session_cookie_is_secure_and_the_rescue_page_gives_the_ca_and_the_lines(
        browser: Browser, tls_server: MoorageServer, screenshots: Path) -> None:
    server = tls_server
    server.project("test-1")
    # Chromium is not told about moorage's CA; what the page offers to download is checked against it below.
    context = browser.new_context(ignore_https_errors=True, accept_downloads=True)
    page = context.new_page()
    sign_in(page, server, "admin", ADMIN_PASSWORD)
    cookie = next(c for c in context.cookies() if c["name"] == "moorage_session")
    assert cookie["secure"] and cookie["httpOnly"]

    page.goto(f"{server.url}/portal/projects/test-1/nodes")
    ca = server.ca_file.read_text()
    expect(page.get_by_label("CA certificate (PEM)")).to_have_value(ca)
    for runtime in ("containerd", "docker", "crio"):
        expect(page.get_by_role("textbox", name=f"node-config command for {runtime}")).to_have_value(
            f"moorage node-config --runtime {runtime} --registry {server.host} --ca-file ca.crt --apply")
    expect(page.get_by_role("textbox", name="pull-secret command")).to_have_value(
        f"moorage pull-secret test-1 --server https://{server.host} --ca-file ca.crt --namespace default --apply")
    page.screenshot(path=screenshots / "nodes.png", full_page=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="ca.crt").click()
    assert Path(download.value.path()).read_text() == ca
    # Nodes fetch it before anyone signs in.
    response = httpx.get(f"{server.url}/portal/ca.crt", verify=server.verify)
    assert response.status_code == 200 and response.text == ca
    context.close()
