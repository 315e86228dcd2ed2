"""Audit log model: who pushed, pulled, deleted what, and which logins failed."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from moorage.meta import outbox
from moorage.meta.outbox import OutboxEvent
from moorage.meta.registry import PullTally, count_pulls
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


#: What the audit log can be filtered and sorted by, under Harbor's names.
COLUMNS: dict[str, sa.Column[Any]] = {name: audit_log.c[name] for name in (
    "id", "username", "resource", "resource_type", "operation", "op_time")}
CONDITION_KINDS = ("exact", "fuzzy", "union", "range")


@dataclass(frozen=True, slots=True)
class Condition:
    """One filter on a column of ``COLUMNS``: exact (one value), fuzzy (a substring, any case), union (any
    of the values) or range (low, high; either may be empty)."""

    column: str
    kind: str
    values: tuple[Any, ...]


class AuditModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store

    def record(self, username: str, resource: str, resource_type: str, operation: str, project: str | None,
               client: str | None) -> None:
        self.record_many([AuditRecord(username, resource, resource_type, operation, project, client)])

    def record_many(self, records: list[AuditRecord], pulls: PullTally | None = None,
                    pull_events: list[OutboxEvent] | None = None) -> None:
        """Record ``records``, add ``pulls`` to the pull counts and put ``pull_events`` in the event outbox (when
        a webhook policy wants pulls), in one transaction."""
        if not records and not pulls:
            return
        with self.store.write() as conn:
            if pulls:
                count_pulls(conn, pulls)
            if pull_events and outbox.wants_pulls(conn):
                outbox.record(conn, pull_events)
            if records:
                conn.execute(audit_log.insert(), [asdict(r) for r in records])

    def page(self, projects: list[str] | None, conditions: list[Condition], order: list[tuple[str, bool]],
             offset: int, limit: int) -> tuple[int, list[AuditEntry]]:
        """(how many entries match, one page of them), filtered, sorted and paged by the database: the log
        grows with every pull, so it is never loaded whole. ``projects`` None means every project;
        ``order`` is (column, descending) pairs, newest first when empty."""
        where = [_clause(c) for c in conditions]
        if projects is not None:
            where.append(audit_log.c.project.in_(projects))
        ordering = [COLUMNS[name].desc() if descending else COLUMNS[name].asc() for name, descending in order]
        query = sa.select(*COLUMNS.values(), audit_log.c.project, audit_log.c.client).where(*where) \
            .order_by(*ordering, audit_log.c.op_time.desc(), audit_log.c.id.desc()).offset(offset).limit(limit)
        with self.store.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(audit_log).where(*where)).scalar_one()
            return total, [AuditEntry(id_, username, resource, resource_type, operation, project, client, op_time)
                           for id_, username, resource, resource_type, operation, op_time, project, client
                           in map(tuple, conn.execute(query))]


def _clause(condition: Condition) -> sa.ColumnElement[bool]:
    column = COLUMNS[condition.column]
    values = condition.values
    if isinstance(column.type, sa.Integer):
        # Compared as 64-bit: PostgreSQL would cast to the column's 32 bits and fail on a larger value.
        values = tuple(None if v is None or v == "" else sa.literal(v, sa.BigInteger) for v in values)
    if condition.kind == "exact":
        return column == values[0]
    if condition.kind == "fuzzy":
        return column.icontains(values[0], autoescape=True)
    if condition.kind == "union":
        return column.in_(values)
    low, high = values
    bounds = [] if low is None or (isinstance(low, str) and not low) else [column >= low]
    bounds += [] if high is None or (isinstance(high, str) and not high) else [column <= high]
    return sa.and_(sa.true(), *bounds)
