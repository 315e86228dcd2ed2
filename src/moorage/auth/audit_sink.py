"""Records registry events (push, pull, delete) in the audit log, a batch per transaction, named as
Harbor names them (a push is "create")."""

from __future__ import annotations

from moorage.core.events import Event
from moorage.meta.audit import AuditModel, AuditRecord
from moorage.meta.store import MetaStore

# Harbor's audit log says "create" for a push; tools that filter on operation=create expect it.
_HARBOR_OPERATIONS = {"push": "create"}


def _record(event: Event) -> AuditRecord:
    separator = "@" if event.reference.startswith("sha") and ":" in event.reference else ":"
    project = event.repository.split("/", 1)[0] if "/" in event.repository else None
    return AuditRecord(username=event.operator or "anonymous",
                       resource=f"{event.repository}{separator}{event.reference}", resource_type="artifact",
                       operation=_HARBOR_OPERATIONS.get(event.action, event.action), project=project,
                       client=event.client)


class AuditSink:
    def __init__(self, store: MetaStore, audit: AuditModel) -> None:
        self.store = store
        self.audit = audit

    async def write(self, events: list[Event]) -> None:
        await self.store.run(self.audit.record_many, [_record(e) for e in events])
