"""Records registry events (push, pull, delete) in the audit log."""

from __future__ import annotations

from moorage.core.events import Event
from moorage.meta.audit import AuditModel
from moorage.meta.store import MetaStore

_OPERATIONS = {"push": "push", "pull": "pull", "delete": "delete"}


class AuditSink:
    def __init__(self, store: MetaStore, audit: AuditModel) -> None:
        self.store = store
        self.audit = audit

    async def emit(self, event: Event) -> None:
        separator = "@" if event.reference.startswith("sha") and ":" in event.reference else ":"
        resource = f"{event.repository}{separator}{event.reference}"
        project = event.repository.split("/", 1)[0] if "/" in event.repository else None
        await self.store.run(self.audit.record, event.operator or "anonymous", resource, "artifact",
                             _OPERATIONS.get(event.action, event.action), project, event.client)
