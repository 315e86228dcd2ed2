"""The seed's story in a browser: the admin makes a private project and a user, adds him as a developer;
he signs in, finds the project, copies the pull command of an image pushed there, and that command's
reference pulls with a real client. Also: who sees which buttons, and robots whose secret is shown once."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.portal.conftest import Admin, new_user_context, sign_in
from tests.support.clients import Skopeo
from tests.support.images import ImageInfo, IndexInfo, other_platforms
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

ADMIN_CREDS = f"admin:{ADMIN_PASSWORD}"


def test_seed_story_admin_sets_up_lidabai_who_copies_a_pull_command_that_pulls(
        browser: Browser, portal_server: MoorageServer, skopeo: Skopeo, oci_image: ImageInfo, tmp_path: Path,
        screenshots: Path) -> None:
    server = portal_server
    admin = new_user_context(browser, server).new_page()
    sign_in(admin, server, "admin", ADMIN_PASSWORD)

    # The admin creates the private project test-1.
    admin.get_by_label("Name", exact=True).fill("test-1")
    expect(admin.get_by_label("Private (members only)")).to_be_checked()
    admin.get_by_label("Storage limit (empty: unlimited)").fill("5")
    admin.get_by_role("button", name="Create project").click()
    expect(admin.get_by_role("heading", name=re.compile("^test-1"))).to_be_visible()
    expect(admin.get_by_text("private", exact=True)).to_be_visible()
    expect(admin.get_by_text("Project test-1 created (private).")).to_be_visible()
    # Its storage limit is shown against what it uses, as a bar.
    expect(admin.get_by_text("Storage 0 B of 5.0 GiB")).to_be_visible()
    expect(admin.get_by_role("progressbar")).to_have_attribute("value", "0")
    admin.screenshot(path=screenshots / "project.png", full_page=True)

    # ... the user lidabai ...
    password = "Lidabai-" + secrets.token_hex(6)
    admin.get_by_role("link", name="Administration").click()
    admin.get_by_label("Username").fill("lidabai")
    admin.get_by_label("Email").fill("lidabai@example.test")
    admin.get_by_label("Password").fill(password)
    admin.get_by_role("button", name="Create user").click()
    expect(admin.get_by_text("User lidabai created.")).to_be_visible()
    expect(admin.get_by_role("cell", name="lidabai", exact=True)).to_be_visible()
    admin.screenshot(path=screenshots / "admin-users.png", full_page=True)

    # ... and adds him to test-1 as a developer.
    admin.goto(f"{server.url}/portal/projects/test-1/members")
    admin.get_by_label("Username").fill("lidabai")
    admin.get_by_label("Role", exact=True).select_option(label="Developer")
    admin.get_by_role("button", name="Add member").click()
    expect(admin.get_by_text("lidabai added to test-1.")).to_be_visible()
    expect(admin.get_by_label("Role of lidabai", exact=True)).to_have_value("2")
    admin.screenshot(path=screenshots / "project-members.png", full_page=True)

    skopeo.push(oci_image, f"{server.host}/test-1/app:v1", creds=ADMIN_CREDS)

    # lidabai signs in and finds test-1 with his role.
    page = new_user_context(browser, server).new_page()
    sign_in(page, server, "lidabai", password)
    row = page.get_by_role("row", name=re.compile("test-1"))
    expect(row).to_contain_text("Developer")
    expect(row).to_contain_text("private")
    page.screenshot(path=screenshots / "projects.png", full_page=True)
    page.get_by_role("link", name="test-1").click()
    page.get_by_role("link", name="test-1/app").click()
    expect(page.get_by_role("heading", name="test-1/app")).to_be_visible()
    page.screenshot(path=screenshots / "repository.png", full_page=True)

    # The copy button gives the tag, not the digest.
    page.get_by_role("button", name="Copy pull command for v1").click()
    expect(page.get_by_role("button", name="Copy pull command for v1")).to_have_text("Copied")
    command = page.evaluate("navigator.clipboard.readText()")
    assert command == f"docker pull {server.host}/test-1/app:v1"

    # That reference pulls, with lidabai's own credentials.
    reference = command.removeprefix("docker pull ")
    skopeo.pull(reference, tmp_path / "pulled", "v1", creds=f"lidabai:{password}")
    assert (tmp_path / "pulled" / "index.json").exists()
    page.context.close()
    admin.context.close()


def test_a_guest_sees_no_delete_buttons_where_a_maintainer_does(
        browser: Browser, portal_server: MoorageServer, admin_api: Admin, skopeo: Skopeo,
        oci_image: ImageInfo) -> None:
    server = portal_server
    server.project("guests")
    skopeo.push(oci_image, f"{server.host}/guests/tool:1.0", creds=ADMIN_CREDS)
    for name, role in (("gina", 3), ("max", 4)):
        admin_api.user(name, f"{name.title()}-Passw0rd-1")
        admin_api.member("guests", name, role)
    buttons = {}
    for name in ("gina", "max"):
        page = new_user_context(browser, server).new_page()
        sign_in(page, server, name, f"{name.title()}-Passw0rd-1")
        page.goto(f"{server.url}/portal/projects/guests/repositories/tool")
        expect(page.get_by_role("button", name="Copy pull command for 1.0")).to_be_visible()
        buttons[name] = page.get_by_role("button", name=re.compile("^Delete")).count()
        if name == "gina":
            page.goto(f"{server.url}/portal/projects/guests/members")
            expect(page.get_by_role("cell", name="max", exact=True)).to_be_visible()
            expect(page.get_by_role("button", name="Add member")).to_have_count(0)
            expect(page.get_by_role("button", name=re.compile("^Remove"))).to_have_count(0)
        page.context.close()
    assert buttons["gina"] == 0
    assert buttons["max"] >= 3  # the tag, the artifact, the repository


def test_an_index_shows_the_platform_of_each_image(browser: Browser, portal_server: MoorageServer,
                                                   skopeo: Skopeo, oci_index: IndexInfo) -> None:
    server = portal_server
    server.project("multi")
    skopeo.push(oci_index, f"{server.host}/multi/base:v1", creds=ADMIN_CREDS)
    page = new_user_context(browser, server).new_page()
    sign_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/portal/projects/multi/repositories/base")
    row = page.get_by_role("row", name=re.compile("v1"))
    for os_name, architecture in other_platforms():
        expect(row).to_contain_text(f"{os_name}/{architecture}")
    expect(row.get_by_role("textbox", name="pull command for v1")).to_have_value(
        f"docker pull {server.host}/multi/base:v1")
    page.context.close()


def test_a_robot_secret_is_shown_once(page: Page, portal_server: MoorageServer, screenshots: Path) -> None:
    server = portal_server
    server.project("robots-1")
    sign_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/portal/projects/robots-1/robots")
    page.get_by_label("Name", exact=True).fill("ci")
    page.get_by_label("Push images").check()
    page.get_by_role("button", name="Create robot account").click()
    expect(page.get_by_text("Copy its secret now")).to_be_visible()
    name = page.get_by_role("textbox", name="robot name").input_value()
    secret = page.get_by_role("textbox", name="robot secret").input_value()
    assert name == "robot$robots-1+ci" and len(secret) >= 16
    page.screenshot(path=screenshots / "robot-created.png", full_page=True)

    # The secret works (the robot reads its project through the API) ...
    response = httpx.get(f"{server.url}/api/v2.0/projects/robots-1", auth=(name, secret), verify=server.verify)
    assert response.status_code == 200, response.text

    # ... and is never shown again, nor logged.
    page.goto(f"{server.url}/portal/projects/robots-1/robots")
    expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
    assert secret not in page.content()
    assert secret not in server.log()

    # Refreshing gives a new secret, shown once too; disabling shows in the list.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Refresh the secret of {name}").click()
    fresh = page.get_by_role("textbox", name="robot secret").input_value()
    assert fresh and fresh != secret
    page.get_by_role("button", name=f"Disable {name}").click()
    expect(page.get_by_role("row", name=re.compile(re.escape(name)))).to_contain_text("disabled")


def test_a_repository_page_reads_on_a_phone(browser: Browser, portal_server: MoorageServer, skopeo: Skopeo,
                                            oci_image: ImageInfo, screenshots: Path) -> None:
    server = portal_server
    server.project("phone")
    skopeo.push(oci_image, f"{server.host}/phone/app:v2", creds=ADMIN_CREDS)
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    sign_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/portal/projects/phone/repositories/app")
    expect(page.get_by_role("textbox", name="pull command for v2")).to_be_visible()
    # Nothing is wider than the screen: no sideways scrolling to reach a button.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=screenshots / "repository-phone.png", full_page=True)
    context.close()


def test_a_project_admin_changes_a_role_and_removes_a_member(page: Page, portal_server: MoorageServer,
                                                             admin_api: Admin) -> None:
    server = portal_server
    server.project("members-1")
    admin_api.user("rita", "Rita-Passw0rd-1")
    admin_api.member("members-1", "rita", 2)
    sign_in(page, server, "admin", ADMIN_PASSWORD)
    page.goto(f"{server.url}/portal/projects/members-1/members")
    page.get_by_label("Role of rita", exact=True).select_option(label="Maintainer")
    page.get_by_role("button", name="Change role of rita").click()
    expect(page.get_by_text("Role changed.")).to_be_visible()
    expect(page.get_by_label("Role of rita", exact=True)).to_have_value("4")
    members = admin_api.api.get("/projects/members-1/members", headers={"X-Is-Resource-Name": "true"}).json()
    assert {m["entity_name"]: m["role_id"] for m in members}["rita"] == 4

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Remove rita from members-1").click()
    expect(page.get_by_text("Member removed.")).to_be_visible()
    expect(page.get_by_role("cell", name="rita", exact=True)).to_have_count(0)


def test_a_maintainer_deletes_a_tag_then_the_artifact(browser: Browser, portal_server: MoorageServer,
                                                       admin_api: Admin, skopeo: Skopeo, oci_image: ImageInfo) -> None:
    server = portal_server
    server.project("cleanup")
    skopeo.push(oci_image, f"{server.host}/cleanup/web:old", creds=ADMIN_CREDS)
    admin_api.user("mona", "Mona-Passw0rd-1")
    admin_api.member("cleanup", "mona", 4)
    page = new_user_context(browser, server).new_page()
    sign_in(page, server, "mona", "Mona-Passw0rd-1")
    page.goto(f"{server.url}/portal/projects/cleanup/repositories/web")
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete tag old").click()
    expect(page.get_by_text("Tag old deleted.")).to_be_visible()
    # Untagged now, the artifact is pulled by its digest: the only reference left.
    expect(page.get_by_role("textbox", name=re.compile("^pull command for sha256:"))).to_have_value(
        f"docker pull {server.host}/cleanup/web@{oci_image.digest}")
    page.get_by_role("button", name=re.compile("^Delete artifact sha256:")).click()
    expect(page.get_by_text(re.compile(r"Artifact sha256:\w+ deleted\."))).to_be_visible()
    expect(page.get_by_text("No artifacts.")).to_be_visible()
    page.context.close()


def test_the_admin_deletes_an_empty_project_and_the_audit_log_shows_it(page: Page, portal_server: MoorageServer,
                                                                       admin_api: Admin, skopeo: Skopeo,
                                                                       oci_image: ImageInfo) -> None:
    server = portal_server
    server.project("short-lived")
    server.project("still-full")
    skopeo.push(oci_image, f"{server.host}/still-full/app:v1", creds=ADMIN_CREDS)
    sign_in(page, server, "admin", ADMIN_PASSWORD)
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Search projects").fill("still-full")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Delete project still-full").click()
    expect(page.get_by_role("alert")).to_contain_text("still holds repositories")
    assert admin_api.project_exists("still-full")

    page.goto(f"{server.url}/portal/projects?q=short-lived")
    page.get_by_role("button", name="Delete project short-lived").click()
    expect(page.get_by_text("Project short-lived deleted.")).to_be_visible()
    assert not admin_api.project_exists("short-lived")
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Audit log").click()
    expect(page.get_by_role("row", name=re.compile("admin delete project short-lived"))).to_be_visible()
    page.get_by_role("link", name="Garbage collection").click()
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
