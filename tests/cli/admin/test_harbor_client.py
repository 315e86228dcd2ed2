"""``moorage.client.harbor`` against the real server: pagination, name-vs-id addressing, error bodies."""

from __future__ import annotations

import httpx
import pytest

from moorage.client.harbor import (
    API_PREFIX,
    HarborAPIError,
    HarborClient,
    HarborUnreachable,
    parse_link_header,
    repo_seg,
)
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer
from tests.support.procs import free_port


@pytest.fixture
def admin(api_server: MoorageServer) -> HarborClient:
    with HarborClient(api_server.url, ("admin", ADMIN_PASSWORD)) as client:
        yield client


def test_paging_through_more_projects_than_fit_on_a_page(admin: HarborClient, unique: str) -> None:
    names = {f"page-{unique}-{i:02d}" for i in range(12)}
    for name in sorted(names):
        admin.create_project(name)

    first = admin.page("/projects", {"name": f"page-{unique}", "page": 1, "page_size": 5})
    assert len(first.items) == 5
    assert first.total == 12, "X-Total-Count is the size of the whole listing"
    assert first.next_url is not None and "page=2" in first.next_url

    walked = [p["name"] for p in admin.paginate("/projects", {"name": f"page-{unique}"}, page_size=5)]
    assert sorted(walked) == sorted(names), "every item exactly once across pages"
    assert len(list(admin.paginate("/projects", {"name": f"page-{unique}"}, page_size=5, limit=7))) == 7

    # The raw headers are Harbor's: Link with rel="next" (and rel="prev" after page 1).
    response = httpx.get(f"{admin.server}{API_PREFIX}/projects",
                         params={"name": f"page-{unique}", "page": 2, "page_size": 5},
                         auth=("admin", ADMIN_PASSWORD))
    links = parse_link_header(response.headers["Link"])
    assert set(links) == {"prev", "next"}
    assert response.headers["X-Total-Count"] == "12"
    for name in names:
        admin.delete_project(name)


def test_projects_by_name_and_by_id(admin: HarborClient, unique: str) -> None:
    # A project whose name is all digits is still addressed by name (X-Is-Resource-Name).
    numeric = f"4{int(unique, 16) % 10**8}"
    created = admin.create_project(numeric)
    assert admin.get_project(numeric)["project_id"] == created["project_id"]
    assert admin.get_project(int(created["project_id"]))["name"] == numeric
    assert admin.project_exists(numeric)
    assert not admin.project_exists(f"absent-{unique}")
    admin.delete_project(numeric)


def test_errors_carry_the_servers_code_and_message(admin: HarborClient, unique: str) -> None:
    with pytest.raises(HarborAPIError) as missing:
        admin.get_project(f"absent-{unique}")
    assert missing.value.status == 404
    assert missing.value.code == "NOT_FOUND"
    assert missing.value.message
    assert missing.value.request_id, "every Harbor response carries X-Request-Id"

    admin.create_project(f"dup-{unique}")
    with pytest.raises(HarborAPIError) as duplicate:
        admin.create_project(f"dup-{unique}")
    assert (duplicate.value.status, duplicate.value.code) == (409, "CONFLICT")
    admin.delete_project(f"dup-{unique}")


def test_anonymous_and_unreachable(api_server: MoorageServer) -> None:
    with HarborClient(api_server.url) as anonymous:
        assert anonymous.ping().strip().lower() == "pong"
        assert anonymous.health()["status"] == "healthy"
        with pytest.raises(HarborAPIError) as refused:
            anonymous.list_users()
        assert refused.value.status == 401 and refused.value.code == "UNAUTHORIZED"
    with HarborClient(f"http://127.0.0.1:{free_port()}", timeout=5) as nowhere, \
            pytest.raises(HarborUnreachable):
        nowhere.ping()


def test_current_user_and_user_lookup(admin: HarborClient) -> None:
    me = admin.current_user()
    assert me["username"] == "admin" and me["sysadmin_flag"] is True
    assert admin.find_user("admin")["user_id"] == me["user_id"]


def test_link_header_and_repository_encoding() -> None:
    header = ('</api/v2.0/projects?page=1&page_size=10>; rel="prev" , '
              '</api/v2.0/projects?page=3&page_size=10>; rel="next"')
    assert parse_link_header(header) == {"prev": "/api/v2.0/projects?page=1&page_size=10",
                                         "next": "/api/v2.0/projects?page=3&page_size=10"}
    assert parse_link_header("") == {}
    assert repo_seg("team/api") == "team%252Fapi"
    assert repo_seg("web") == "web"
