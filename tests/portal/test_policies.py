"""A project's policies page (fast tier): immutable tag rules, the retention policy and webhooks as the API
lists them, a webhook's credentials never shown, and nothing of it for those the API refuses."""

from __future__ import annotations

import pytest

from tests.portal.test_sessions import sign_in
from tests.support.inprocess import InProcessMoorage

pytestmark = pytest.mark.fast


def _selector(pattern: str, decoration: str) -> dict[str, str]:
    return {"kind": "doublestar", "decoration": decoration, "pattern": pattern}


def test_the_policies_page_shows_rules_retention_and_webhooks(inprocess: InProcessMoorage) -> None:
    project = inprocess.project("policies-1")
    with inprocess.api() as api:
        project_id = api.get(f"/projects/{project}").json()["project_id"]
        assert api.post(f"/projects/{project}/immutabletagrules", json={
            "disabled": False, "action": "immutable", "template": "immutable_template",
            "tag_selectors": [_selector("v*", "matches")],
            "scope_selectors": {"repository": [_selector("app", "repoMatches")]}}).status_code == 201
        retained = api.post("/retentions", json={
            "algorithm": "or", "trigger": {"kind": "Schedule", "settings": {"cron": "0 0 3 * * *"}},
            "scope": {"level": "project", "ref": project_id},
            "rules": [{"disabled": False, "action": "retain", "template": "latestPushedK",
                       "params": {"latestPushedK": 5}, "tag_selectors": [_selector("**", "matches")],
                       "scope_selectors": {"repository": [_selector("**", "repoMatches")]}}]})
        assert retained.status_code == 201, retained.text
        hook = api.post(f"/projects/{project}/webhook/policies", headers={"X-Is-Resource-Name": "true"}, json={
            "name": "ci", "enabled": True, "event_types": ["PUSH_ARTIFACT"],
            "targets": [{"type": "http", "address": "http://127.0.0.1:9/hook", "auth_header": "Bearer hook-cred-1"}]})
        assert hook.status_code == 201, hook.text
        assert api.post("/users", json={"username": "polly", "password": "Polly-Passw0rd-1"}).status_code in (201, 409)
        assert api.post(f"/projects/{project}/members", json={
            "role_id": 5, "member_user": {"username": "polly"}}).status_code == 201
    with inprocess.client(auth=None) as browser:
        sign_in(browser)
        page = browser.get(f"/portal/projects/{project}/policies")
        assert page.status_code == 200
        for shown in ("repoMatches app", "matches v*", "latestPushedK 5", "0 0 3 * * *", "http://127.0.0.1:9/hook",
                      "PUSH_ARTIFACT"):
            assert shown in page.text, shown
        assert "hook-cred-1" not in page.text
    with inprocess.client(auth=None) as limited:
        sign_in(limited, "polly", "Polly-Passw0rd-1")
        project_page = limited.get(f"/portal/projects/{project}")
        assert project_page.status_code == 200 and f"/portal/projects/{project}/policies" not in project_page.text
        page = limited.get(f"/portal/projects/{project}/policies")
        assert "http://127.0.0.1:9/hook" not in page.text and "latestPushedK" not in page.text
