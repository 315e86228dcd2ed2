"""Whatever a client puts in a path, a query string or a body, the answer is Harbor's 400 or 404, never
a 500: ids in ASCII digits within 64 bits, pages within bounds, text a database can hold."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.api.harbor import add_member, api, assert_error, make_project, make_robot, make_user, push_image
from tests.support.moorage import MoorageServer

INT64_MAX = 2**63 - 1

#: Not ids: superscripts and other scripts' digits pass str.isdigit(), a number past 64 bits overflowed SQLite.
MALFORMED_IDS = ["%C2%B3", "%D9%A3", "%EF%BC%93", "1e3", "-1", "0", "+5", "%201", "1_0", "0x10", "abc",
                 str(INT64_MAX + 1), "277982634225113890816", "9" * 5000]


@pytest.mark.parametrize("method, path", [("GET", "/robots/{}"), ("PUT", "/robots/{}"), ("PATCH", "/robots/{}"),
                                          ("DELETE", "/robots/{}"), ("GET", "/users/{}"), ("PUT", "/users/{}"),
                                          ("DELETE", "/users/{}"), ("PUT", "/users/{}/password"),
                                          ("PUT", "/users/{}/sysadmin")])
def test_a_malformed_id_in_a_path_is_a_bad_request(moorage: MoorageServer, method: str, path: str) -> None:
    with api(moorage) as admin:
        for raw in MALFORMED_IDS:
            r = admin.request(method, path.format(raw), json={"description": "x"})
            assert_error(r, 400, "BAD_REQUEST")
            message = r.json()["errors"][0]["message"]
            assert "digits 0-9" in message or "between 1 and" in message, (raw, message)


def test_the_fuzzers_two_findings(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        # '³' is no id (str.isdigit() said it was): it is a project name, and no project has it.
        assert_error(admin.get("/projects/%C2%B3/summary"), 404, "NOT_FOUND")
        assert_error(admin.put("/robots/277982634225113890816", json={"description": "x"}), 400, "BAD_REQUEST")


def test_an_id_that_names_nothing_is_not_found(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        for path in ("/robots/{}", "/users/{}", f"/projects/{project}/members/{{}}"):
            headers = {"X-Is-Resource-Name": "true"}
            assert_error(admin.get(path.format(INT64_MAX), headers=headers), 404, "NOT_FOUND")
            assert_error(admin.delete(path.format(INT64_MAX - 1), headers=headers), 404, "NOT_FOUND")
        assert_error(admin.get(f"/projects/{INT64_MAX}"), 404, "NOT_FOUND")
        assert_error(admin.get(f"/projects/{INT64_MAX + 1}"), 400, "BAD_REQUEST")
        assert_error(admin.get(f"/projects/{project}/members/%C2%B3", headers={"X-Is-Resource-Name": "true"}),
                     400, "BAD_REQUEST")


def test_pages_are_bounded(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        for path in ("/projects", "/users", "/robots", "/audit-logs", f"/projects/{project}/logs",
                     f"/projects/{project}/repositories", "/repositories"):
            for page, size in (("%C2%B3", "10"), ("0", "10"), ("-1", "10"), (str(INT64_MAX + 1), "10"),
                               ("1", "0"), ("1", "101"), ("1", "%D9%A3"), ("1.5", "10")):
                assert_error(admin.get(f"{path}?page={page}&page_size={size}"), 400, "BAD_REQUEST")
            # The last page there is: empty, computed without overflowing a database OFFSET.
            last = admin.get(path, params={"page": INT64_MAX, "page_size": 100})
            assert last.status_code == 200 and last.json() == [], (path, last.text)
            assert 'rel="prev"' in last.headers["link"]


def test_filters_and_sorts_that_make_no_sense_are_bad_requests(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        for params in ({"q": "repo_count=[a~b]"}, {"q": "repo_count=[%C2%B3~]"}, {"q": "repo_count=[~1e999]"},
                       {"sort": "metadata"}, {"sort": "-cve_allowlist"}, {"sort": "current_user_role_ids"}):
            assert_error(admin.get("/projects", params=params), 400, "BAD_REQUEST")
        logs = f"/projects/{project}/logs"
        for q in ("id=[³~5]", "id=99999999999999999999", "op_time=[nan~]", "op_time=[1e999~]", "id=-3"):
            assert_error(admin.get(logs, params={"q": q}), 400, "BAD_REQUEST")
        assert admin.get(logs, params={"q": f"id=[1~{INT64_MAX}]"}).status_code == 200


@pytest.mark.parametrize("where", ["path", "query", "header"])
def test_text_no_database_can_hold_is_refused(moorage: MoorageServer, where: str) -> None:
    """PostgreSQL refuses a NUL even in a comparison; a lone surrogate cannot be encoded at all."""
    with api(moorage) as admin:
        project = make_project(admin)
        for bad in ("%00", "a%00b", "%ED%A0%80"):
            if where == "path":
                r = admin.get(f"/projects/{bad}", headers={"X-Is-Resource-Name": "true"})
                assert r.status_code in (400, 404), r.text
                assert_error(admin.get(f"/projects/{project}/repositories/{bad}"), r.status_code,
                             r.json()["errors"][0]["code"])
            elif where == "query" and "%00" in bad:  # undecodable bytes in a query arrive as U+FFFD, which is fine
                for path in ("/audit-logs", "/projects", "/users/search", "/search", "/robots"):
                    assert_error(admin.get(f"{path}?q=username={bad}&username={bad}"), 400, "BAD_REQUEST")
                assert_error(admin.head(f"/projects?project_name={bad}"), 400, "BAD_REQUEST")
            elif where == "header":
                bad_user = httpx.get(f"{moorage.url}/api/v2.0/projects", auth=("ad\x00min", "x"))
                assert_error(bad_user, 401, "UNAUTHORIZED")


def test_bodies_with_impossible_values_are_bad_requests(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        robot = make_robot(admin, project, ["pull"])
        _, user = make_user(admin)
        member = add_member(admin, project, user, 3)
        raw = {"Content-Type": "application/json"}
        name = {"X-Is-Resource-Name": "true"}
        refused = [
            ("POST", f"/projects/{project}/members", {"role_id": 2, "member_user": {"user_id": 2**70}}, name),
            ("POST", f"/projects/{project}/members", {"role_id": 2**64, "member_user": {"username": "x"}}, name),
            ("PUT", f"/projects/{project}/members/{member}", {"role_id": -(2**80)}, name),
            ("PUT", f"/robots/{robot['id']}", {"duration": 2**62}, {}),
            ("PUT", f"/robots/{robot['id']}", {"description": "x" * 1025}, {}),
            ("PUT", f"/robots/{robot['id']}", {"description": "nul \u0000 inside"}, {}),
            ("PUT", f"/robots/{robot['id']}", {"description": "lone \ud800 surrogate"}, {}),
            ("POST", "/projects", {"project_name": "fine-name", "storage_limit": 2**64}, {}),
            ("POST", "/projects", {"project_name": "fine-name", "metadata": {"public\u0000": "true"}}, {}),
            ("POST", "/users", {"username": "someone", "password": "Test-Passw0rd", "email": "e" * 250 + "@x.example"},
             {}),
        ]
        for method, path, body, headers in refused:
            content = json.dumps(body).encode()
            r = admin.request(method, path, content=content, headers={**raw, **headers})
            assert_error(r, 400, "BAD_REQUEST")
        long_project = make_project(admin, name="p" + "x" * 200)
        r = admin.post("/robots", json={"name": "b" * 60, "level": "project", "duration": -1, "permissions": [
            {"kind": "project", "namespace": long_project,
             "access": [{"resource": "repository", "action": "pull"}]}]})
        assert_error(r, 400, "BAD_REQUEST")
        assert "255" in r.json()["errors"][0]["message"]


def test_artifact_and_repository_paths_with_odd_text(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        push_image(registry, f"{project}/app", "v1")
        base = f"/projects/{project}/repositories/app/artifacts"
        for reference in ("%C2%B3", "sha256:%C2%B3", "v1%00", "x" * 300):
            r = admin.get(f"{base}/{reference}")
            assert r.status_code in (400, 404), (reference, r.text)
        assert_error(admin.get(f"{base}/v1/tags", params={"page": "%C2%B3"}), 400, "BAD_REQUEST")
