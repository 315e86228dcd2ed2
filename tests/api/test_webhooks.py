"""A project admin points a webhook at a CI receiver: every push, pull, tag and deletion arrives there, in
Harbor's payload shape (and as CloudEvents for a second target), signed, each with its own stable id; the
policy, its executions, tasks and logs are managed and read through Harbor's webhook API. On SQLite and on
PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.harbor import PASSWORD, add_member, api, assert_error, make_project, make_user
from tests.e2e.test_storage_reclaim import push
from tests.support.moorage import MoorageServer
from tests.support.procs import wait_until
from tests.support.webhook_receiver import WebhookReceiver

ALL_TYPES = ["PUSH_ARTIFACT", "PULL_ARTIFACT", "DELETE_ARTIFACT", "CREATE_TAG", "DELETE_TAG"]
SECRET = "hook-secret-1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(tmp_path / "receiver").start()
    try:
        yield receiver
    finally:
        receiver.stop()


def create_policy(admin: httpx.Client, project: str, targets: list[dict[str, Any]], name: str = "ci",
                  event_types: list[str] | None = None) -> int:
    r = admin.post(f"/projects/{project}/webhook/policies", headers={"X-Is-Resource-Name": "true"},
                   json={"name": name, "description": "tell CI", "enabled": True, "targets": targets,
                         "event_types": event_types or ALL_TYPES})
    assert r.status_code == 201, r.text
    assert r.headers["location"].startswith("/api/v2.0/projects/")
    return int(r.headers["location"].rsplit("/", 1)[1])


def verify(entry: dict[str, Any], secret: str) -> bool:
    headers = entry["headers"]
    signed = headers["x-moorage-timestamp"].encode() + b"." + entry["body"].encode()
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("x-moorage-signature-256", ""), expected)


def test_every_event_arrives_in_harbors_shape_signed_and_as_cloudevents(moorage: MoorageServer,
                                                                        receiver: WebhookReceiver) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        create_policy(admin, project, [
            {"type": "http", "address": f"{receiver.url}/default", "secret": SECRET},
            {"type": "http", "address": f"{receiver.url}/cloudevents", "payload_format": "CloudEvents"}])
        with moorage.client() as registry:
            digest, _ = push(registry, f"{project}/app", "v1", [b"layer one"])
            r = registry.put(f"/v2/{project}/app/manifests/v2", content=registry.get(
                f"/v2/{project}/app/manifests/v1", headers={"Accept": OCI_MANIFEST}).content,
                headers={"Content-Type": OCI_MANIFEST})
            assert r.status_code == 201
            assert admin.delete(f"/projects/{project}/repositories/app/artifacts/{digest}/tags/v2").status_code == 200
            assert registry.delete(f"/v2/{project}/app/manifests/{digest}").status_code == 202
        # push v1: PUSH_ARTIFACT + CREATE_TAG; GET v1 (a pull); push v2: PUSH_ARTIFACT + CREATE_TAG; delete tag v2;
        # delete the artifact: 7 events, to each of the two targets.
        received = receiver.wait_for(14)
    default = [e for e in received if e["path"] == "/hook/default"]
    cloud = [e for e in received if e["path"] == "/hook/cloudevents"]
    assert sorted(e["json"]["type"] for e in default) == sorted(
        ["PUSH_ARTIFACT", "CREATE_TAG", "PULL_ARTIFACT", "PUSH_ARTIFACT", "CREATE_TAG", "DELETE_TAG",
         "DELETE_ARTIFACT"])
    ids = [e["headers"]["x-moorage-event-id"] for e in default]
    assert len(set(ids)) == 7, "every event has its own id"
    assert sorted(e["json"]["id"] for e in cloud) == sorted(ids), "both targets hear of the same events"
    for entry in default:
        payload = entry["json"]
        assert entry["headers"]["x-moorage-event-type"] == payload["type"]
        assert entry["headers"]["content-type"] == "application/json"
        assert verify(entry, SECRET), "the signature verifies with the policy's secret"
        assert not verify(entry, "another secret")
        assert payload["operator"] == "admin" and isinstance(payload["occur_at"], int)
        assert abs(payload["occur_at"] - time.time()) < 600
        repository = payload["event_data"]["repository"]
        assert repository == {"date_created": repository["date_created"], "name": "app", "namespace": project,
                              "repo_full_name": f"{project}/app", "repo_type": "private"}
        resource = payload["event_data"]["resources"][0]
        assert resource["digest"] == digest
        assert resource["resource_url"].endswith((f"{project}/app:{resource['tag']}", f"{project}/app@{digest}"))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in default:
        by_type.setdefault(entry["json"]["type"], []).append(entry["json"]["event_data"]["resources"])
    assert sorted(r[0]["tag"] for r in by_type["PUSH_ARTIFACT"]) == ["v1", "v2"]
    assert by_type["PUSH_ARTIFACT"][0][0]["mime_type"] == OCI_MANIFEST
    assert sorted(r[0]["tag"] for r in by_type["CREATE_TAG"]) == ["v1", "v2"]
    assert by_type["PULL_ARTIFACT"][0][0]["tag"] == "v1"
    assert by_type["DELETE_TAG"][0][0]["tag"] == "v2"
    assert [r["tag"] for r in by_type["DELETE_ARTIFACT"][0]] == ["v1"], "the tags the artifact had"
    for entry in cloud:
        event = entry["json"]
        assert entry["headers"]["content-type"] == "application/cloudevents+json"
        assert "x-moorage-signature-256" not in entry["headers"], "no secret, no signature"
        assert event["specversion"] == "1.0" and event["type"].startswith("harbor.")
        assert event["data"]["repository"]["repo_full_name"] == f"{project}/app"


def test_policies_executions_tasks_and_logs_through_the_api(moorage: MoorageServer,
                                                            receiver: WebhookReceiver) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        base = f"/projects/{project}/webhook"
        named = {"X-Is-Resource-Name": "true"}
        policy_id = create_policy(admin, project, [{"type": "http", "address": receiver.url, "secret": SECRET,
                                                    "auth_header": "Bearer ci-token", "timeout": 5}],
                                  event_types=["PUSH_ARTIFACT"])
        listed = admin.get(f"{base}/policies", headers=named)
        assert listed.status_code == 200 and listed.headers["x-total-count"] == "1"
        policy = admin.get(f"{base}/policies/{policy_id}", headers=named).json()
        assert policy["name"] == "ci" and policy["enabled"] is True and policy["creator"] == "admin"
        assert policy["event_types"] == ["PUSH_ARTIFACT"] and policy["project_id"] > 0
        assert policy["targets"] == [{"type": "http", "address": receiver.url, "auth_header": "Bearer ci-token",
                                      "skip_cert_verify": False, "payload_format": "Default", "timeout": 5.0}]
        assert SECRET not in listed.text, "a secret is never shown back"

        # An update that leaves the secret out keeps it (what a GET-modify-PUT client does).
        changed = {**policy, "name": "ci-2", "event_types": ["PUSH_ARTIFACT", "DELETE_TAG"]}
        assert admin.put(f"{base}/policies/{policy_id}", headers=named, json=changed).status_code == 200
        assert admin.get(f"{base}/policies/{policy_id}", headers=named).json()["name"] == "ci-2"

        with moorage.client() as registry:
            push(registry, f"{project}/app", "v1", [b"layer"])
        entry = receiver.wait_for(1)[0]
        assert verify(entry, SECRET) and entry["headers"]["authorization"] == "Bearer ci-token"

        def finished() -> list[dict[str, Any]]:
            found = admin.get(f"{base}/policies/{policy_id}/executions", headers=named).json()
            return found if found and found[0]["status"] == "Success" else []
        executions = wait_until(finished, timeout=30, what="the execution to succeed")
        assert isinstance(executions, list) and len(executions) == 1
        execution = executions[0]
        assert execution["vendor_type"] == "WEBHOOK" and execution["vendor_id"] == policy_id
        assert execution["trigger"] == "EVENT" and execution["extra_attrs"]["event_type"] == "PUSH_ARTIFACT"
        assert execution["extra_attrs"]["event_id"] == entry["headers"]["x-moorage-event-id"]
        assert execution["metrics"]["task_count"] == 1 and execution["metrics"]["success_task_count"] == 1
        tasks = admin.get(f"{base}/policies/{policy_id}/executions/{execution['id']}/tasks", headers=named)
        assert tasks.status_code == 200 and tasks.headers["x-total-count"] == "1"
        task = tasks.json()[0]
        assert task["status"] == "Success" and task["run_count"] == 1 and task["execution_id"] == execution["id"]
        log = admin.get(f"{base}/policies/{policy_id}/executions/{execution['id']}/tasks/{task['id']}/log",
                        headers=named)
        assert log.status_code == 200 and log.headers["content-type"].startswith("text/plain")
        assert "attempt 1" in log.text and "HTTP 200" in log.text and SECRET not in log.text

        triggers = admin.get(f"{base}/lasttrigger", headers=named).json()
        assert {(t["policy_name"], t["event_type"]) for t in triggers} == {("ci-2", "PUSH_ARTIFACT"),
                                                                          ("ci-2", "DELETE_TAG")}
        assert all(t["enabled"] for t in triggers)
        assert next(t for t in triggers if t["event_type"] == "PUSH_ARTIFACT")["last_trigger_time"]
        assert "last_trigger_time" not in next(t for t in triggers if t["event_type"] == "DELETE_TAG")
        supported = admin.get(f"{base}/events", headers=named).json()
        assert set(ALL_TYPES) <= set(supported["event_type"]) and supported["notify_type"] == ["http"]
        assert supported["payload_formats"] == [{"notify_type": "http", "formats": ["Default", "CloudEvents"]}]

        assert admin.delete(f"{base}/policies/{policy_id}", headers=named).status_code == 200
        assert_error(admin.get(f"{base}/policies/{policy_id}", headers=named), 404, "NOT_FOUND")
        assert_error(admin.get(f"{base}/policies/{policy_id}/executions", headers=named), 404, "NOT_FOUND")


def test_bad_policies_are_refused_with_what_to_fix(moorage: MoorageServer) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        other = make_project(admin)
        base = f"/projects/{project}/webhook/policies"
        named = {"X-Is-Resource-Name": "true"}
        good = {"name": "ok", "targets": [{"type": "http", "address": "http://127.0.0.1:9/hook"}],
                "event_types": ["PUSH_ARTIFACT"]}
        for body, words in [
            ({**good, "event_types": ["PUSH_IMAGE"]}, "unknown event type"),
            ({**good, "event_types": []}, "event_types"),
            ({**good, "targets": []}, "targets"),
            ({**good, "targets": [{"address": "ftp://x"}]}, "http:// or https://"),
            ({**good, "targets": [{"address": "http://x", "payload_format": "XML"}]}, "payload_format"),
            ({**good, "targets": [{"address": "http://x", "type": "slack"}]}, "target type"),
            ({**good, "name": ""}, "name"),
            ({**good, "targets": "http://x"}, "targets"),
        ]:
            r = admin.post(base, headers=named, json=body)
            assert_error(r, 400, "BAD_REQUEST")
            assert words in r.json()["errors"][0]["message"], (body, r.text)
        assert admin.post(base, headers=named, json=good).status_code == 201
        assert_error(admin.post(base, headers=named, json=good), 409, "CONFLICT")
        policy_id = int(admin.get(base, headers=named).json()[0]["id"])
        assert_error(admin.get(f"/projects/{other}/webhook/policies/{policy_id}", headers=named), 404, "NOT_FOUND")
        assert_error(admin.get(f"{base}/999999", headers=named), 404, "NOT_FOUND")
        assert_error(admin.get(f"{base}/99999999999", headers=named), 404, "NOT_FOUND")
        assert_error(admin.get(f"{base}/x", headers=named), 400, "BAD_REQUEST")
        assert_error(admin.get(f"{base}/{policy_id}/executions/1/tasks", headers=named), 404, "NOT_FOUND")
        _, developer = make_user(admin)
        add_member(admin, project, developer, 2)
    with api(moorage, None) as anonymous:
        assert_error(anonymous.get(base, headers=named), 401, "UNAUTHORIZED")
    with api(moorage, (developer, PASSWORD)) as member:
        assert_error(member.post(base, headers=named, json={**good, "name": "mine"}), 403, "FORBIDDEN")
        assert_error(member.delete(f"{base}/{policy_id}", headers=named), 403, "FORBIDDEN")
    assert not moorage.server_errors()


def test_a_push_over_the_quota_is_told_as_quota_exceed(moorage: MoorageServer, receiver: WebhookReceiver) -> None:
    with api(moorage) as admin:
        project = make_project(admin)
        project_id = admin.get(f"/projects/{project}", headers={"X-Is-Resource-Name": "true"}).json()["project_id"]
        quota = admin.get("/quotas", params={"reference_id": project_id}).json()[0]
        assert admin.put(f"/quotas/{quota['id']}", json={"hard": {"storage": 1000}}).status_code == 200
        create_policy(admin, project, [{"address": receiver.url}], event_types=["QUOTA_EXCEED", "PUSH_ARTIFACT"])
        # Each layer fits on its own; the image (both, with its config and manifest) does not.
        with moorage.client() as registry, pytest.raises(AssertionError, match="exceed the project"):
            push(registry, f"{project}/app", "big", [os.urandom(450), os.urandom(450)])
        entry = receiver.wait_for(1)[0]
        payload = entry["json"]
        assert payload["type"] == "QUOTA_EXCEED" and payload["operator"] == "admin"
        assert payload["event_data"]["repository"]["repo_full_name"] == f"{project}/app"
        assert "1000" in payload["event_data"]["custom_attributes"]["Details"]
        assert payload["event_data"]["resources"][0]["digest"].startswith("sha256:")
        # A layer alone over the limit is refused before it is stored, and told the same way.
        layer = os.urandom(2000)
        with moorage.client() as registry, pytest.raises(AssertionError, match="exceed the project"):
            push(registry, f"{project}/app", "bigger", [layer])
        second = receiver.wait_for(2)[1]["json"]
    assert second["type"] == "QUOTA_EXCEED"
    assert second["event_data"]["resources"][0]["digest"] == "sha256:" + hashlib.sha256(layer).hexdigest()
    assert "adding 2000 bytes" in second["event_data"]["custom_attributes"]["Details"]


def test_a_tag_retention_run_is_told_when_it_ends(moorage: MoorageServer, receiver: WebhookReceiver) -> None:
    from tests.api.test_retention_api import create_policy as create_retention
    from tests.api.test_retention_api import policy as retention_policy
    from tests.api.test_retention_api import rule, run

    with api(moorage) as admin:
        project = make_project(admin)
        project_id = int(admin.get(f"/projects/{project}", headers={"X-Is-Resource-Name": "true"}).json()["project_id"])
        create_policy(admin, project, [{"address": receiver.url}], event_types=["TAG_RETENTION"])
        with moorage.client() as registry:
            push(registry, f"{project}/app", "old", [os.urandom(64)])
            push(registry, f"{project}/app", "new", [os.urandom(64)])
        retention_id = create_retention(admin, retention_policy(project_id, rule("latestPushedK", 1)))
        assert run(admin, retention_id, dry_run=False)["status"] == "Success"
        payload = receiver.wait_for(1)[0]["json"]
    assert payload["type"] == "TAG_RETENTION" and "repository" not in payload["event_data"]
    retention = payload["event_data"]["retention"]
    assert retention["project_name"] == project and retention["retention_policy_id"] == retention_id
    assert retention["result"] == "SUCCESS" and retention["dry_run"] is False
    assert retention["total"] == 2 and retention["retained"] == 1
