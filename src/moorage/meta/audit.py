"""Audit log model: who pushed, pulled, deleted what, and which logins failed."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import sqlalchemy as sa

from moorage.meta.schema import audit_log
from moorage.meta.store import MetaStore


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    username: str
    resource: str
    resource_type: str
    operation: str
    project: str | None
    client: str | None
    op_time: float


@dataclass(frozen=True, slots=True)
class AuditRecord:
    username: str
    resource: str
    resource_type: str
    operation: str
    project: str | None
    client: str | None
    op_time: float = field(default_factory=time.time)


class AuditModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store

    def record(self, username: str, resource: str, resource_type: str, operation: str, project: str | None,
               client: str | None) -> None:
        self.record_many([AuditRecord(username, resource, resource_type, operation, project, client)])

    def record_many(self, records: list[AuditRecord]) -> None:
        if not records:
            return
        with self.store.write() as conn:
            conn.execute(audit_log.insert(), [asdict(r) for r in records])

    def entries(self, projects: list[str] | None = None) -> list[AuditEntry]:
        """Newest first; ``projects`` limits to those projects (None: everything)."""
        query = sa.select(audit_log.c.id, audit_log.c.username, audit_log.c.resource, audit_log.c.resource_type,
                          audit_log.c.operation, audit_log.c.project, audit_log.c.client, audit_log.c.op_time) \
            .order_by(audit_log.c.op_time.desc(), audit_log.c.id.desc())
        if projects is not None:
            query = query.where(audit_log.c.project.in_(projects))
        with self.store.read() as conn:
            return [AuditEntry(*row) for row in conn.execute(query)]
