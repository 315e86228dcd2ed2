"""Repositories, artifacts, tags, audit logs, search, statistics, systeminfo, health, ping, OpenAPI."""

from __future__ import annotations

import httpx

from tests.api.harbor import PASSWORD, add_member, api, assert_error, make_project, make_user, push_image
from tests.support.moorage import MoorageServer
from tests.support.procs import wait_until


def test_repositories_artifacts_tags(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        digest = push_image(registry, f"{project}/team/app", "v1")
        base = f"/projects/{project}/repositories/team%252Fapp"
        repos = admin.get(f"/projects/{project}/repositories").json()
        assert [r["name"] for r in repos] == [f"{project}/team/app"] and repos[0]["artifact_count"] == 1
        assert admin.get(base).json()["name"] == f"{project}/team/app"
        arts = admin.get(f"{base}/artifacts").json()
        assert arts[0]["digest"] == digest and [t["name"] for t in arts[0]["tags"]] == ["v1"] and arts[0]["size"] > 0
        assert admin.get(f"{base}/artifacts/v1").json()["digest"] == digest
        assert admin.get(f"{base}/artifacts/{digest}").json()["repository_name"] == f"{project}/team/app"
        assert admin.post(f"{base}/artifacts/{digest}/tags", json={"name": "stable"}).status_code == 201
        assert_error(admin.post(f"{base}/artifacts/{digest}/tags", json={"name": "stable"}), 409, "CONFLICT")
        assert_error(admin.post(f"{base}/artifacts/{digest}/tags", json={"name": ".bad"}), 400, "BAD_REQUEST")
        assert sorted(t["name"] for t in admin.get(f"{base}/artifacts/{digest}/tags").json()) == ["stable", "v1"]
        assert registry.get(f"/v2/{project}/team/app/manifests/stable").status_code == 200
        assert [a["digest"] for a in admin.get(f"{base}/artifacts", params={"q": "tags=stable"}).json()] == [digest]
        assert admin.delete(f"{base}/artifacts/{digest}/tags/stable").status_code == 200
        assert_error(admin.delete(f"{base}/artifacts/{digest}/tags/stable"), 404, "NOT_FOUND")
        assert_error(admin.get(f"{base}/artifacts/nope"), 404, "NOT_FOUND")
        assert_error(admin.get(f"{base}/artifacts/bad%20ref"), 400, "BAD_REQUEST")
        assert_error(admin.get(f"/projects/{project}/repositories/missing"), 404, "NOT_FOUND")
        _, guest = make_user(admin)
        add_member(admin, project, guest, 3)
        with api(moorage, auth=(guest, PASSWORD)) as as_guest:
            assert as_guest.get(f"{base}/artifacts").status_code == 200
            assert_error(as_guest.delete(f"{base}/artifacts/{digest}"), 403, "FORBIDDEN")
            assert_error(as_guest.delete(base), 403, "FORBIDDEN")
        with api(moorage, auth=None) as anonymous:
            assert_error(anonymous.get(f"{base}/artifacts"), 401, "UNAUTHORIZED")
        assert admin.delete(f"{base}/artifacts/{digest}").status_code == 200
        assert registry.get(f"/v2/{project}/team/app/manifests/v1").status_code == 404
        assert admin.delete(base).status_code == 200
        assert admin.get(f"/projects/{project}/repositories").json() == []
        def logged() -> list[tuple[str, str]]:
            entries = admin.get(f"/projects/{project}/logs", params={"page_size": 100}).json()
            ops = [(e["operation"], e["resource"]) for e in entries]
            return ops if ("create", f"{project}/team/app:v1") in ops and any(op == "delete" for op, _ in ops) \
                else []

        # Registry events reach the audit log in batches, a fraction of a second after the fact.
        wait_until(logged, timeout=5, what="the push (create) and delete in the project's audit log")


def test_audit_logs_record_pulls_and_failed_logins(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        push_image(registry, f"{project}/app", "v1")
        assert registry.get(f"/v2/{project}/app/manifests/v1").status_code == 200
        httpx.get(f"{moorage.url}/v2/", auth=("ghost-user", "Wrong-Passw0rd"))

        def recorded() -> list[dict[str, str]]:
            logs = admin.get("/audit-logs", params={"page_size": 100}).json()
            seen = {e["operation"] for e in logs if e["resource"].startswith(f"{project}/")}
            return logs if {"pull", "create"} <= seen else []

        logs = wait_until(recorded, timeout=5, what="the push and the pull in the audit log")
        assert any(e["operation"] == "login_failed" and e["username"] == "ghost-user" for e in logs)
        assert "Wrong-Passw0rd" not in str(logs)
        assert admin.get("/audit-logs", params={"q": "operation=pull", "page_size": 100}).json()[0][
            "operation"] == "pull"
        _, user = make_user(admin)
    with api(moorage, auth=(user, PASSWORD)) as someone:
        assert someone.get("/audit-logs").json() == []
        assert_error(someone.get(f"/projects/{project}/logs"), 403, "FORBIDDEN")
    with api(moorage, auth=None) as anonymous:
        assert_error(anonymous.get("/audit-logs"), 401, "UNAUTHORIZED")


def test_a_busy_audit_log_is_filtered_sorted_and_paged(moorage: MoorageServer) -> None:
    """Harbor's q, sort and paging on the audit log, answered by the database, not by loading the log."""
    with api(moorage) as admin, moorage.client() as registry:
        project = make_project(admin)
        push_image(registry, f"{project}/app", "v1")
        push_image(registry, f"{project}/tool", "v1")
        for _ in range(12):
            assert registry.get(f"/v2/{project}/app/manifests/v1").status_code == 200
        logs = f"/projects/{project}/logs"

        def all_pulls_logged() -> bool:
            return admin.get(logs, params={"q": "operation=pull"}).headers["X-Total-Count"] == "12"

        wait_until(all_pulls_logged, timeout=5, what="twelve pulls in the audit log")
        first = admin.get(logs, params={"q": "operation=pull", "page_size": 5})
        assert len(first.json()) == 5 and 'rel="next"' in first.headers["Link"]
        last = admin.get(logs, params={"q": "operation=pull", "page_size": 5, "page": 3})
        assert len(last.json()) == 2 and 'rel="prev"' in last.headers["Link"]
        newest_first = [e["op_time"] for e in admin.get(logs, params={"page_size": 100}).json()]
        assert newest_first == sorted(newest_first, reverse=True)
        oldest_first = admin.get(logs, params={"sort": "op_time", "page_size": 100}).json()
        # The project's creation comes first, then the first push.
        assert [(e["operation"], e["resource_type"], e["resource"]) for e in oldest_first[:1]] == \
            [("create", "project", project)]
        assert oldest_first[1]["operation"] == "create" and oldest_first[1]["resource"].startswith(f"{project}/app")

        tools = admin.get(logs, params={"q": "resource=~TOOL", "page_size": 100}).json()
        assert tools and {e["resource"].split(":")[0].split("@")[0] for e in tools} == {f"{project}/tool"}
        both = admin.get(logs, params={"q": "operation={create pull}"}).headers["X-Total-Count"]
        assert int(both) >= 14
        today = admin.get(logs, params={"q": "op_time=[2000-01-01 00:00:00~2999-12-31 23:59:59]"})
        assert today.headers["X-Total-Count"] == both
        assert admin.get(logs, params={"q": "op_time=[2999-01-01T00:00:00Z~]"}).json() == []

        assert_error(admin.get(logs, params={"q": "password=x"}), 400, "BAD_REQUEST")
        assert_error(admin.get(logs, params={"q": "op_time=[yesterday~today]"}), 400, "BAD_REQUEST")
        assert_error(admin.get(logs, params={"q": "operation=(create pull)"}), 400, "BAD_REQUEST")
        assert_error(admin.get(logs, params={"sort": "-secret"}), 400, "BAD_REQUEST")


def test_search_statistics_systeminfo_health_ping_openapi(moorage: MoorageServer) -> None:
    with api(moorage) as admin, moorage.client() as registry:
        private = make_project(admin)
        public = make_project(admin, public=True)
        push_image(registry, f"{private}/secret-app", "v1")
        push_image(registry, f"{public}/open-app", "v1")
        found = admin.get("/search", params={"q": private}).json()
        assert [p["name"] for p in found["project"]] == [private]
        assert found["repository"][0]["repository_name"] == f"{private}/secret-app"
        assert_error(admin.get("/search"), 400, "BAD_REQUEST")
        stats = admin.get("/statistics").json()
        assert stats["total_project_count"] >= 2 and stats["total_storage_consumption"] > 0
    with api(moorage, auth=None) as anonymous:
        found = anonymous.get("/search", params={"q": "app"}).json()
        names = [r["repository_name"] for r in found["repository"]]
        assert f"{public}/open-app" in names and f"{private}/secret-app" not in names
        assert_error(anonymous.get("/statistics"), 401, "UNAUTHORIZED")
        info = anonymous.get("/systeminfo").json()
        assert info["auth_mode"] == "db_auth" and "registry_url" not in info
        health = anonymous.get("/health").json()
        assert health["status"] == "healthy"
        ping = anonymous.get("/ping")
        assert ping.text == "Pong" and ping.headers["x-request-id"]
        assert anonymous.get("/ping", headers={"X-Request-Id": "abc-123"}).headers["x-request-id"] == "abc-123"
        spec = anonymous.get("/openapi.json").json()
        assert "/projects/{project_name_or_id}/members" in spec["paths"] and "post" in spec["paths"]["/robots"]
        assert "/node-credentials" in spec["paths"]
        assert_error(anonymous.get("/no-such-endpoint"), 404, "NOT_FOUND")
        assert_error(anonymous.delete("/ping"), 405, "METHOD_NOT_ALLOWED")
