"""What a webhook receiver gets, built without a server: Harbor's payload shape, the CloudEvents form, a
signature a receiver can check with nothing but the secret, and retries that back off and end."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from moorage.core import webhooks

pytestmark = pytest.mark.fast

DIGEST = "sha256:" + "a" * 64


def _push() -> dict:
    return webhooks.harbor_payload("PUSH_ARTIFACT", 1_700_000_000.7, "alice", "library/app",
                                   [{"digest": DIGEST, "tag": "v1"}], repository_created=1_600_000_000.0,
                                   public=False, registry_host="registry.example:5000")


def test_a_push_reads_as_harbor_sends_it() -> None:
    assert _push() == {
        "type": "PUSH_ARTIFACT", "occur_at": 1_700_000_000, "operator": "alice",
        "event_data": {
            "resources": [{"digest": DIGEST, "tag": "v1", "resource_url": "registry.example:5000/library/app:v1"}],
            "repository": {"date_created": 1_600_000_000, "name": "app", "namespace": "library",
                           "repo_full_name": "library/app", "repo_type": "private"}}}


def test_an_untagged_resource_is_addressed_by_digest() -> None:
    payload = webhooks.harbor_payload("DELETE_ARTIFACT", 1.0, "bob", "p/a/b", [{"digest": DIGEST, "tag": ""}],
                                      repository_created=None, public=True, registry_host="r")
    assert payload["event_data"]["resources"][0]["resource_url"] == f"r/p/a/b@{DIGEST}"
    assert payload["event_data"]["repository"]["name"] == "a/b"
    assert payload["event_data"]["repository"]["repo_type"] == "public"


def test_cloudevents_carry_the_event_id_and_harbor_data() -> None:
    target = webhooks.Target("http://127.0.0.1:1/x", payload_format="CloudEvents")
    body, content_type = webhooks.body_for(target, "id-1", _push(), "/projects/1/webhook/policies/2")
    event = json.loads(body)
    assert content_type == "application/cloudevents+json"
    assert event["specversion"] == "1.0" and event["id"] == "id-1"
    assert event["type"] == "harbor.artifact.pushed" and event["source"] == "/projects/1/webhook/policies/2"
    assert event["time"] == "2023-11-14T22:13:20Z"
    assert event["data"]["resources"][0]["digest"] == DIGEST


def test_a_receiver_verifies_the_signature_with_the_secret_alone() -> None:
    target = webhooks.Target("http://127.0.0.1:1/x", secret="s3cret")
    body, content_type = webhooks.body_for(target, "id-1", _push(), "src")
    headers = webhooks.headers_for(target, "id-1", "PUSH_ARTIFACT", body, content_type, 1_700_000_000.2)
    assert headers["X-Moorage-Event-Id"] == "id-1" and headers["X-Moorage-Timestamp"] == "1700000000"
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers["X-Moorage-Signature-256"] == f"sha256={expected}"
    unsigned = webhooks.headers_for(webhooks.Target("http://127.0.0.1:1/x"), "id-1", "PUSH_ARTIFACT", body,
                                    content_type, 1.0)
    assert "X-Moorage-Signature-256" not in unsigned


def test_retries_back_off_exponentially_and_stop_after_a_day() -> None:
    policy = webhooks.RetryPolicy(base=10, cap=3600, max_age=86400)
    pauses = [policy.next_attempt(n, 1000.0, 1000.0) for n in range(1, 12)]
    assert all(p is not None for p in pauses)
    waits = [p - 1000.0 for p in pauses if p is not None]
    assert 8 <= waits[0] <= 10 and 16 <= waits[1] <= 20 and 32 <= waits[2] <= 40
    assert max(waits) <= 3600 and waits[-1] >= 2880
    assert policy.next_attempt(5, 1000.0 + 86000, 1000.0) is not None  # 160 s later is still within the day
    assert policy.next_attempt(5, 1000.0 + 86300, 1000.0) is None


@pytest.mark.parametrize("target, problem", [
    (webhooks.Target("ftp://example"), "http:// or https://"),
    (webhooks.Target("http://example", payload_format="XML"), "payload_format"),
    (webhooks.Target("http://example", type="slack"), "target type"),
    (webhooks.Target("http://example", timeout=0), "timeout"),
    (webhooks.Target("http://example", auth_header="a\r\nb"), "one line"),
])
def test_unusable_targets_are_refused_with_the_reason(target: webhooks.Target, problem: str) -> None:
    with pytest.raises(webhooks.WebhookInvalid, match=problem):
        webhooks.check_target(target)


def test_event_types_must_be_known() -> None:
    webhooks.check_event_types(["PUSH_ARTIFACT", "DELETE_TAG"])
    with pytest.raises(webhooks.WebhookInvalid, match="unknown event type"):
        webhooks.check_event_types(["PUSH_IMAGE"])
    with pytest.raises(webhooks.WebhookInvalid, match="at least one"):
        webhooks.check_event_types([])
