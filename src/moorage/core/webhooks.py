"""Webhooks, the domain part: which events exist, what a target is, the payload a receiver gets (Harbor's
shape or a CloudEvent), how it is signed, and when a failed delivery is tried again.

Nothing here touches the network or the database: the outbox (``moorage.meta.outbox``) records events with
the change that caused them, and the delivery worker (``moorage.core.webhook_delivery``) sends them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: Harbor's names for the events moorage raises. Tag events are moorage's answer to harbor#18820 and #22640
#: (Harbor raises them internally but never sends them); the names are those of Harbor's internal topics.
PUSH_ARTIFACT = "PUSH_ARTIFACT"
PULL_ARTIFACT = "PULL_ARTIFACT"
DELETE_ARTIFACT = "DELETE_ARTIFACT"
CREATE_TAG = "CREATE_TAG"
DELETE_TAG = "DELETE_TAG"
#: A push refused by the project's storage quota.
QUOTA_EXCEED = "QUOTA_EXCEED"
#: A tag retention run ended (project-wide: no ``repository`` in its payload).
TAG_RETENTION = "TAG_RETENTION"
#: Every event a policy may listen to. Harbor's QUOTA_WARNING and REPLICATION join once their features raise
#: them (``moorage.meta.outbox.record_event``), not before: a policy must not wait for events that never come.
EVENT_TYPES: tuple[str, ...] = (PUSH_ARTIFACT, PULL_ARTIFACT, DELETE_ARTIFACT, CREATE_TAG, DELETE_TAG, QUOTA_EXCEED,
                                TAG_RETENTION)

#: The CloudEvents ``type`` of each event, as Harbor names them in that format.
CLOUDEVENT_TYPES = {
    PUSH_ARTIFACT: "harbor.artifact.pushed", PULL_ARTIFACT: "harbor.artifact.pulled",
    DELETE_ARTIFACT: "harbor.artifact.deleted", CREATE_TAG: "harbor.tag.created", DELETE_TAG: "harbor.tag.deleted",
    "QUOTA_EXCEED": "harbor.quota.exceeded", "QUOTA_WARNING": "harbor.quota.warned",
    "TAG_RETENTION": "harbor.tag_retention.finished", "REPLICATION": "harbor.replication.status.changed",
}

NOTIFY_TYPES: tuple[str, ...] = ("http",)
DEFAULT_FORMAT = "Default"
CLOUDEVENTS_FORMAT = "CloudEvents"
PAYLOAD_FORMATS: tuple[str, ...] = (DEFAULT_FORMAT, CLOUDEVENTS_FORMAT)

#: Headers of every delivery: the event's id (stable across retries: receivers deduplicate on it), its type,
#: when the request was signed, and the signature when the target has a secret.
ID_HEADER = "X-Moorage-Event-Id"
TYPE_HEADER = "X-Moorage-Event-Type"
TIMESTAMP_HEADER = "X-Moorage-Timestamp"
SIGNATURE_HEADER = "X-Moorage-Signature-256"


class WebhookInvalid(ValueError):
    """A policy or target that cannot be used; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Target:
    address: str
    type: str = "http"
    auth_header: str = ""
    skip_cert_verify: bool = False
    payload_format: str = DEFAULT_FORMAT
    #: Signs each delivery with HMAC-SHA256 when set (moorage's extension; never shown back).
    secret: str = ""
    #: Seconds one delivery attempt may take; None means the server's default.
    timeout: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {"address": self.address, "type": self.type, "auth_header": self.auth_header,
                "skip_cert_verify": self.skip_cert_verify, "payload_format": self.payload_format,
                "secret": self.secret, "timeout": self.timeout}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Target:
        return cls(address=value["address"], type=value.get("type", "http"), auth_header=value.get("auth_header", ""),
                   skip_cert_verify=bool(value.get("skip_cert_verify", False)),
                   payload_format=value.get("payload_format", DEFAULT_FORMAT), secret=value.get("secret", ""),
                   timeout=value.get("timeout"))


def check_target(target: Target) -> None:
    if target.type not in NOTIFY_TYPES:
        raise WebhookInvalid(f"target type must be one of {', '.join(NOTIFY_TYPES)}, not {target.type[:50]!r}")
    if not target.address.startswith(("http://", "https://")) or len(target.address) > 2048 \
            or any(c.isspace() for c in target.address):
        raise WebhookInvalid(f"target address must be an http:// or https:// URL of at most 2048 characters, "
                             f"not {target.address[:100]!r}")
    if target.payload_format not in PAYLOAD_FORMATS:
        raise WebhookInvalid(f"payload_format must be one of {', '.join(PAYLOAD_FORMATS)}, not "
                             f"{target.payload_format[:50]!r}")
    if target.timeout is not None and not 0 < target.timeout <= 300:
        raise WebhookInvalid("a target's timeout must be between 0 and 300 seconds")
    if "\n" in target.auth_header or "\r" in target.auth_header:
        raise WebhookInvalid("auth_header must be one line")


def check_event_types(event_types: list[str]) -> None:
    if not event_types:
        raise WebhookInvalid(f"event_types must name at least one of {', '.join(EVENT_TYPES)}")
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise WebhookInvalid(f"unknown event type(s) {', '.join(repr(t[:50]) for t in unknown)}; supported: "
                             + ", ".join(EVENT_TYPES))


# -- payloads ----------------------------------------------------------------------------------------------
def resource_url(registry_host: str, repository: str, resource: dict[str, Any]) -> str:
    if resource.get("tag"):
        return f"{registry_host}/{repository}:{resource['tag']}"
    return f"{registry_host}/{repository}@{resource.get('digest', '')}"


def harbor_payload(event_type: str, occurred_at: float, operator: str, repository: str,
                   resources: list[dict[str, Any]], *, repository_created: float | None, public: bool,
                   registry_host: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event as Harbor's default format sends it: ``type``, ``occur_at`` (epoch seconds), ``operator`` and
    ``event_data`` with ``resources`` and ``repository``."""
    event_data: dict[str, Any] = {
        "resources": [{**r, "resource_url": resource_url(registry_host, repository, r)} for r in resources]}
    if "/" in repository:  # a project-wide event (TAG_RETENTION) names no repository
        namespace, _, name = repository.partition("/")
        event_data["repository"] = {"date_created": int(repository_created or occurred_at), "name": name,
                                    "namespace": namespace, "repo_full_name": repository,
                                    "repo_type": "public" if public else "private"}
    if extra:
        event_data.update(extra)
    return {"type": event_type, "occur_at": int(occurred_at), "operator": operator, "event_data": event_data}


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cloudevent(event_id: str, payload: dict[str, Any], source: str) -> dict[str, Any]:
    """The event as a CloudEvent 1.0 in structured mode (``application/cloudevents+json``)."""
    return {"specversion": "1.0", "id": event_id, "source": source,
            "type": CLOUDEVENT_TYPES.get(payload["type"], payload["type"].lower()),
            "time": _rfc3339(payload["occur_at"]), "datacontenttype": "application/json",
            "operator": payload["operator"], "data": payload["event_data"]}


def body_for(target: Target, event_id: str, payload: dict[str, Any], source: str) -> tuple[bytes, str]:
    """What is sent to ``target``, and its content type."""
    if target.payload_format == CLOUDEVENTS_FORMAT:
        return json.dumps(cloudevent(event_id, payload, source)).encode(), "application/cloudevents+json"
    return json.dumps(payload).encode(), "application/json"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with the target's secret over ``<timestamp>.<body>``. The timestamp is
    signed too so a captured delivery cannot be replayed later as new; a receiver checks both."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def headers_for(target: Target, event_id: str, event_type: str, body: bytes, content_type: str,
                now: float) -> dict[str, str]:
    timestamp = int(now)
    headers = {"Content-Type": content_type, ID_HEADER: event_id, TYPE_HEADER: event_type,
               TIMESTAMP_HEADER: str(timestamp), "User-Agent": "moorage-webhook"}
    if target.auth_header:
        headers["Authorization"] = target.auth_header
    if target.secret:
        headers[SIGNATURE_HEADER] = sign(target.secret, timestamp, body)
    return headers


# -- retries -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetryPolicy:
    #: The pause after the first failure; each further failure doubles it, up to ``cap``.
    base: float = 10.0
    cap: float = 3600.0
    #: A delivery failing for this long since its event is given up (status Error), never retried forever.
    max_age: float = 86400.0

    def next_attempt(self, failures: int, now: float, created_at: float) -> float | None:
        """When to try again after ``failures`` failed attempts, or None to give up."""
        pause = min(self.cap, self.base * 2 ** min(failures - 1, 40))
        # Up to a fifth less, so deliveries that failed together (a receiver restarting) spread out.
        due = now + pause * (1 - random.random() * 0.2)
        return None if due - created_at > self.max_age else due
