"""Records registry events (push, pull, delete) in the audit log, a batch per transaction, named as
Harbor names them (a push is "create"). The same transaction adds the batch's pulls to the pull counts
and times of artifacts, tags and repositories, so a pull itself never writes."""

from __future__ import annotations

import time

from moorage.core.events import Event
from moorage.meta.audit import AuditModel, AuditRecord
from moorage.meta.outbox import OutboxEvent, pulled
from moorage.meta.registry import PullTally
from moorage.meta.store import MetaStore

# Harbor's audit log says "create" for a push; tools that filter on operation=create expect it.
_HARBOR_OPERATIONS = {"push": "create"}


def _is_digest(reference: str) -> bool:
    # A tag never holds a colon; a digest always does.
    return ":" in reference


def _record(event: Event) -> AuditRecord:
    separator = "@" if _is_digest(event.reference) else ":"
    project = event.repository.split("/", 1)[0] if "/" in event.repository else None
    return AuditRecord(username=event.operator or "anonymous",
                       resource=f"{event.repository}{separator}{event.reference}", resource_type="artifact",
                       operation=_HARBOR_OPERATIONS.get(event.action, event.action), project=project,
                       client=event.client)


def tally_pulls(events: list[Event], when: float) -> PullTally:
    tally = PullTally()
    for event in events:
        if event.action == "pull" and event.resource_type == "manifest" and event.digest:
            tag = None if _is_digest(event.reference) else event.reference
            tally.add(event.repository, event.digest, tag, when)
    return tally


def pull_events(events: list[Event], when: float) -> list[OutboxEvent]:
    """The batch's manifest GETs as PULL_ARTIFACT events, recorded with the batch (a webhook per pull)."""
    return [pulled(e.repository, e.digest, None if _is_digest(e.reference) else e.reference, e.operator, when)
            for e in events if e.action == "pull" and e.resource_type == "manifest" and e.digest]


class AuditSink:
    def __init__(self, store: MetaStore, audit: AuditModel) -> None:
        self.store = store
        self.audit = audit

    async def write(self, events: list[Event]) -> None:
        now = time.time()
        await self.store.run(self.audit.record_many, [_record(e) for e in events], tally_pulls(events, now),
                             pull_events(events, now))
