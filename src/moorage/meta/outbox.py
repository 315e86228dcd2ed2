"""The event outbox: events are written in the transaction of the change they tell of, so an event is
recorded exactly when its change commits, whatever happens to the process afterwards.

``record_event`` is the one call for any feature that raises an event (quotas, retention, ...): give it the
caller's write connection. The webhook worker (``moorage.meta.webhooks.WebhookModel.fan_out``) later turns
each row into deliveries and removes it, in one transaction of its own.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from moorage.meta.schema import (
    manifests,
    projects,
    repositories,
    retention_executions,
    retention_policies,
    retention_tasks,
    tags,
    webhook_events,
    webhook_policies,
)
from moorage.meta.store import MetaStore

_INSERT = webhook_events.insert()


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    #: Harbor's event type (``moorage.core.webhooks.EVENT_TYPES``).
    type: str
    #: The repository's full name (``project/repo``); for a project-wide event, the project's name.
    repository: str
    operator: str
    #: Each ``{"digest": ..., "tag": ...}`` plus what else a receiver should know (``mime_type``, ``size``).
    resources: list[dict[str, Any]] = field(default_factory=list)
    occurred_at: float = field(default_factory=time.time)
    #: Fields added to the payload's ``event_data`` beside ``resources`` and ``repository``.
    extra: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        project = self.repository.split("/", 1)[0]
        data: dict[str, Any] = {"resources": self.resources}
        if self.extra:
            data["extra"] = self.extra
        return {"event_id": str(uuid.uuid4()), "type": self.type, "project": project,
                "repository": self.repository, "operator": self.operator or "anonymous",
                "occurred_at": self.occurred_at, "data_json": json.dumps(data)}


def record(conn: sa.Connection, events: Sequence[OutboxEvent]) -> None:
    """Add ``events`` to the outbox inside the caller's transaction: one INSERT, however many."""
    if events:
        conn.execute(_INSERT, [e.row() for e in events])


def record_event(conn: sa.Connection, event_type: str, repository: str, operator: str,
                 resources: list[dict[str, Any]] | None = None, **extra: Any) -> None:
    """Record one event in the caller's transaction (``conn`` from ``MetaStore.write``), e.g.
    ``record_event(conn, "QUOTA_EXCEED", "library/app", "alice", [{"digest": d}], custom_attributes={...})``."""
    record(conn, [OutboxEvent(event_type, repository, operator, resources or [], extra=extra or None)])


# -- the registry's own events ---------------------------------------------------------------------------------
def pushed(repo: str, digest: str, media_type: str, size: int, tag_names: list[str], operator: str,
           when: float) -> list[OutboxEvent]:
    """A manifest push: PUSH_ARTIFACT (a resource per tag, or one by digest), and CREATE_TAG per tag set."""
    resources = [{"digest": digest, "tag": t, "mime_type": media_type, "size": size} for t in tag_names] \
        or [{"digest": digest, "tag": "", "mime_type": media_type, "size": size}]
    events = [OutboxEvent("PUSH_ARTIFACT", repo, operator, resources, when)]
    events += [OutboxEvent("CREATE_TAG", repo, operator, [{"digest": digest, "tag": t}], when) for t in tag_names]
    return events


_REPO = sa.select(repositories.c.id).where(repositories.c.name == sa.bindparam("repo")).scalar_subquery()
_TAGS_OF = sa.select(tags.c.name).join(manifests, manifests.c.id == tags.c.manifest_id).where(
    manifests.c.repository_id == _REPO, manifests.c.digest == sa.bindparam("digest")).order_by(tags.c.name)
_MANIFEST_OF = sa.select(manifests.c.digest, manifests.c.media_type).join(tags, tags.c.manifest_id == manifests.c.id) \
    .where(tags.c.repository_id == _REPO, tags.c.name == sa.bindparam("tag"))
_MANIFEST = sa.select(manifests.c.media_type).where(manifests.c.repository_id == _REPO,
                                                    manifests.c.digest == sa.bindparam("digest"))


def artifact_deleted(conn: sa.Connection, repo: str, digest: str, operator: str) -> list[OutboxEvent]:
    """DELETE_ARTIFACT for a manifest about to be deleted in ``conn``'s transaction (with the tags it had), or
    nothing when there is no such manifest."""
    media_type = conn.execute(_MANIFEST, {"repo": repo, "digest": digest}).scalar()
    if media_type is None:
        return []
    names = list(conn.execute(_TAGS_OF, {"repo": repo, "digest": digest}).scalars())
    resources = [{"digest": digest, "tag": t, "mime_type": media_type} for t in names] \
        or [{"digest": digest, "tag": "", "mime_type": media_type}]
    return [OutboxEvent("DELETE_ARTIFACT", repo, operator, resources)]


def tag_deleted(conn: sa.Connection, repo: str, tag: str, operator: str) -> list[OutboxEvent]:
    """DELETE_TAG for a tag about to be deleted in ``conn``'s transaction, or nothing when there is none."""
    found = conn.execute(_MANIFEST_OF, {"repo": repo, "tag": tag}).first()
    if found is None:
        return []
    return [OutboxEvent("DELETE_TAG", repo, operator, [{"digest": found.digest, "tag": tag,
                                                        "mime_type": found.media_type}])]


def quota_exceeded(repo: str, digest: str, operator: str, adding: int, used: int, hard: int) -> OutboxEvent:
    """QUOTA_EXCEED for a push the project's quota refused (Harbor's ``custom_attributes.Details``)."""
    details = f"adding {adding} bytes to {used} used exceeds the quota of {hard} bytes"
    return OutboxEvent("QUOTA_EXCEED", repo, operator, [{"digest": digest}],
                       extra={"custom_attributes": {"Details": details}})


def retention_finished(conn: sa.Connection, execution_id: int, status: str) -> list[OutboxEvent]:
    """TAG_RETENTION for a tag retention run ending as ``status``, in the transaction that records its end: the
    project, the policy, how many artifacts the run looked at and kept (Harbor's ``event_data.retention``)."""
    found = conn.execute(sa.select(projects.c.name, retention_executions.c.policy_id, retention_executions.c.dry_run)
                         .join(retention_policies, retention_policies.c.id == retention_executions.c.policy_id)
                         .join(projects, projects.c.id == retention_policies.c.project_id)
                         .where(retention_executions.c.id == execution_id)).first()
    if found is None:
        return []
    total, retained = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(retention_tasks.c.total), 0),
                                             sa.func.coalesce(sa.func.sum(retention_tasks.c.retained), 0))
                                   .where(retention_tasks.c.execution_id == execution_id)).one()
    retention = {"project_name": found.name, "retention_policy_id": found.policy_id, "execution_id": execution_id,
                 "result": status.upper(), "dry_run": bool(found.dry_run), "total": int(total),
                 "retained": int(retained)}
    return [OutboxEvent("TAG_RETENTION", found.name, "retention", [], extra={"retention": retention})]


def record_alone(store: MetaStore, events: Sequence[OutboxEvent]) -> None:
    """Record events in a transaction of their own: for a change that was refused (its own transaction rolled
    back, taking anything recorded in it along)."""
    with store.write() as conn:
        record(conn, events)


def pulled(repo: str, digest: str, tag: str | None, operator: str, when: float) -> OutboxEvent:
    return OutboxEvent("PULL_ARTIFACT", repo, operator, [{"digest": digest, "tag": tag or ""}], when)


_ANY_PULL_POLICY = sa.select(sa.literal(1)).select_from(webhook_policies).where(
    webhook_policies.c.enabled.is_(True), webhook_policies.c.event_types_json.contains('"PULL_ARTIFACT"')).limit(1)


def wants_pulls(conn: sa.Connection) -> bool:
    """Whether any enabled policy listens to pulls: a pull storm writes no event rows nobody wants."""
    return conn.execute(_ANY_PULL_POLICY).first() is not None
