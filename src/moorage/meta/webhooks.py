"""Webhook policies, and the life of their deliveries: the outbox's events fanned out to executions and
tasks, tasks claimed by whichever worker gets them first, each attempt's outcome and log.

Every step is one transaction, so a crash anywhere leaves either the step done or the step to do: an
event leaves the outbox in the transaction that creates its tasks, and a claimed task whose worker died is
due again when its claim runs out (at least once; the event id lets receivers drop a repeat).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from moorage.core.webhooks import Target, harbor_payload
from moorage.meta.schema import (
    projects,
    repositories,
    webhook_events,
    webhook_executions,
    webhook_policies,
    webhook_tasks,
)
from moorage.meta.store import MetaStore

PENDING, RUNNING, SUCCESS, ERROR = "Pending", "Running", "Success", "Error"
_FAN_OUT_BATCH = 200
#: A claim outlives its attempt's timeout by this much, for the outcome's own write.
CLAIM_MARGIN_SECONDS = 10.0


class PolicyNameTaken(Exception):
    """Another policy of the project has that name."""


@dataclass(frozen=True, slots=True)
class Policy:
    id: int
    project_id: int
    name: str
    description: str
    targets: list[Target]
    event_types: list[str]
    creator: str
    enabled: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Execution:
    id: int
    policy_id: int
    event_id: str
    event_type: str
    created_at: float
    #: How many of its tasks are in each status.
    counts: dict[str, int]
    end_time: float | None

    @property
    def status(self) -> str:
        if self.counts.get(RUNNING):
            return RUNNING
        if self.counts.get(PENDING):
            # Retrying after a failure is still running, to Harbor's eye; never tried is pending.
            return RUNNING if self.counts.get("_tried") else PENDING
        if self.counts.get(ERROR):
            return ERROR
        return SUCCESS


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    execution_id: int
    address: str
    status: str
    run_count: int
    created_at: float
    updated_at: float
    start_time: float | None
    end_time: float | None
    log: str = ""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A claimed task with what sending it takes."""

    task_id: int
    execution_id: int
    policy_id: int
    project_id: int
    event_id: str
    event_type: str
    payload: dict[str, Any]
    target: Target | None
    run_count: int
    created_at: float
    #: Seconds the attempt may take.
    timeout: float


@dataclass
class LastTrigger:
    policy_name: str
    event_type: str
    enabled: bool
    created_at: float
    last_trigger: float | None = field(default=None)


def _policy(row: Any) -> Policy:
    return Policy(row.id, row.project_id, row.name, row.description,
                  [Target.from_json(t) for t in json.loads(row.targets_json)], json.loads(row.event_types_json),
                  row.creator, bool(row.enabled), row.created_at, row.updated_at)


class WebhookModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store

    # -- policies ---------------------------------------------------------------------------------------
    def policies(self, project_id: int) -> list[Policy]:
        with self.store.read() as conn:
            rows = conn.execute(sa.select(webhook_policies).where(webhook_policies.c.project_id == project_id)
                                .order_by(webhook_policies.c.id))
            return [_policy(r) for r in rows]

    def policy(self, project_id: int, policy_id: int) -> Policy | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(webhook_policies).where(webhook_policies.c.project_id == project_id,
                                                                 webhook_policies.c.id == policy_id)).first()
            return _policy(row) if row else None

    def create(self, project_id: int, name: str, description: str, targets: list[Target], event_types: list[str],
               creator: str, enabled: bool) -> int:
        now = time.time()
        with self.store.write() as conn:
            new_id = self.store.insert_new(
                conn, webhook_policies, webhook_policies.c.id, project_id=project_id, name=name,
                description=description, targets_json=json.dumps([t.as_json() for t in targets]),
                event_types_json=json.dumps(event_types), creator=creator, enabled=enabled, created_at=now,
                updated_at=now)
        if new_id is None:
            raise PolicyNameTaken(name)
        return int(new_id)

    def update(self, policy_id: int, name: str, description: str, targets: list[Target], event_types: list[str],
               enabled: bool) -> None:
        with self.store.write() as conn:
            project_id = conn.execute(sa.select(webhook_policies.c.project_id)
                                      .where(webhook_policies.c.id == policy_id)).scalar_one()
            taken = conn.execute(sa.select(webhook_policies.c.id).where(
                webhook_policies.c.project_id == project_id, webhook_policies.c.name == name,
                webhook_policies.c.id != policy_id)).first()
            if taken is not None:
                raise PolicyNameTaken(name)
            conn.execute(webhook_policies.update().where(webhook_policies.c.id == policy_id).values(
                name=name, description=description, targets_json=json.dumps([t.as_json() for t in targets]),
                event_types_json=json.dumps(event_types), enabled=enabled, updated_at=time.time()))

    def delete(self, policy_id: int) -> None:
        with self.store.write() as conn:
            # Tasks and executions go with it (foreign keys cascade; SQLite's are on in every connection).
            conn.execute(webhook_policies.delete().where(webhook_policies.c.id == policy_id))

    # -- history ----------------------------------------------------------------------------------------
    def executions(self, policy_id: int, offset: int, limit: int) -> tuple[int, list[Execution]]:
        with self.store.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(webhook_executions)
                                 .where(webhook_executions.c.policy_id == policy_id)).scalar_one()
            rows = conn.execute(sa.select(webhook_executions.c.id, webhook_executions.c.event_id,
                                          webhook_executions.c.event_type, webhook_executions.c.created_at)
                                .where(webhook_executions.c.policy_id == policy_id)
                                .order_by(webhook_executions.c.id.desc()).offset(offset).limit(limit)).all()
            return total, self._with_counts(conn, policy_id, rows)

    def execution(self, policy_id: int, execution_id: int) -> Execution | None:
        with self.store.read() as conn:
            rows = conn.execute(sa.select(webhook_executions.c.id, webhook_executions.c.event_id,
                                          webhook_executions.c.event_type, webhook_executions.c.created_at)
                                .where(webhook_executions.c.policy_id == policy_id,
                                       webhook_executions.c.id == execution_id)).all()
            found = self._with_counts(conn, policy_id, rows)
            return found[0] if found else None

    def _with_counts(self, conn: sa.Connection, policy_id: int, rows: Any) -> list[Execution]:
        ids = [r.id for r in rows]
        counts: dict[int, dict[str, int]] = {i: {} for i in ids}
        ends: dict[int, float | None] = {}
        if ids:
            query = sa.select(webhook_tasks.c.execution_id, webhook_tasks.c.status, sa.func.count(),
                              sa.func.max(webhook_tasks.c.run_count), sa.func.max(webhook_tasks.c.end_time)) \
                .where(webhook_tasks.c.execution_id.in_(ids)) \
                .group_by(webhook_tasks.c.execution_id, webhook_tasks.c.status)
            for execution_id, status, count, tried, end in conn.execute(query):
                counts[execution_id][status] = count
                if tried:
                    counts[execution_id]["_tried"] = counts[execution_id].get("_tried", 0) + 1
                if end is not None:
                    ends[execution_id] = max(end, ends.get(execution_id) or 0)
        return [Execution(r.id, policy_id, r.event_id, r.event_type, r.created_at, counts[r.id], ends.get(r.id))
                for r in rows]

    def tasks(self, execution_id: int) -> list[Task]:
        with self.store.read() as conn:
            rows = conn.execute(sa.select(webhook_tasks).where(webhook_tasks.c.execution_id == execution_id)
                                .order_by(webhook_tasks.c.id))
            return [Task(r.id, r.execution_id, r.address, r.status, r.run_count, r.created_at, r.updated_at,
                         r.start_time, r.end_time, r.log) for r in rows]

    def last_triggers(self, project_id: int) -> list[LastTrigger]:
        """Per policy of the project and event type it listens to, when it last fired."""
        with self.store.read() as conn:
            policies = [_policy(r) for r in conn.execute(
                sa.select(webhook_policies).where(webhook_policies.c.project_id == project_id)
                .order_by(webhook_policies.c.id))]
            last: dict[tuple[int, str], float] = {}
            if policies:
                query = sa.select(webhook_executions.c.policy_id, webhook_executions.c.event_type,
                                  sa.func.max(webhook_executions.c.created_at)) \
                    .where(webhook_executions.c.policy_id.in_([p.id for p in policies])) \
                    .group_by(webhook_executions.c.policy_id, webhook_executions.c.event_type)
                last = {(policy_id, event_type): when for policy_id, event_type, when in conn.execute(query)}
        return [LastTrigger(p.name, t, p.enabled, p.created_at, last.get((p.id, t)))
                for p in policies for t in p.event_types]

    # -- the outbox's events to deliveries --------------------------------------------------------------
    def fan_out(self, registry_host: str, limit: int = _FAN_OUT_BATCH) -> int:
        """Turn up to ``limit`` outbox events into an execution per policy that wants each, with a task per
        target, and remove them from the outbox: all in one transaction. How many events were taken."""
        now = time.time()
        with self.store.write() as conn:
            query = sa.select(webhook_events).order_by(webhook_events.c.id).limit(limit)
            if not self.store.is_sqlite:
                # Workers of other replicas take the next events instead of waiting for these.
                query = query.with_for_update(skip_locked=True)
            events = conn.execute(query).all()
            if not events:
                return 0
            names = sorted({e.project for e in events})
            by_project: dict[str, list[tuple[Policy, bool]]] = {}
            for row in conn.execute(sa.select(webhook_policies, projects.c.name.label("project_name"),
                                              projects.c.public.label("project_public"))
                                    .join(projects, projects.c.id == webhook_policies.c.project_id)
                                    .where(projects.c.name.in_(names), webhook_policies.c.enabled.is_(True))
                                    .order_by(webhook_policies.c.id)):
                by_project.setdefault(row.project_name, []).append((_policy(row), bool(row.project_public)))
            repo_names = sorted({e.repository for e in events if by_project.get(e.project)})
            created = dict(conn.execute(sa.select(repositories.c.name, repositories.c.created_at)
                                        .where(repositories.c.name.in_(repo_names))).all()) if repo_names else {}
            for event in events:
                data = json.loads(event.data_json)
                for policy, public in by_project.get(event.project, []):
                    if event.type not in policy.event_types or not policy.targets:
                        continue
                    payload = harbor_payload(event.type, event.occurred_at, event.operator, event.repository,
                                             data.get("resources", []), repository_created=created.get(
                                                 event.repository), public=public, registry_host=registry_host,
                                             extra=data.get("extra"))
                    execution_id = conn.execute(webhook_executions.insert().values(
                        policy_id=policy.id, event_id=event.event_id, event_type=event.type,
                        payload_json=json.dumps(payload), created_at=now).returning(webhook_executions.c.id)
                    ).scalar_one()
                    conn.execute(webhook_tasks.insert(), [
                        {"execution_id": execution_id, "address": t.address, "status": PENDING, "run_count": 0,
                         "next_attempt_at": now, "log": "", "created_at": now, "updated_at": now}
                        for t in dict.fromkeys(policy.targets)])
            conn.execute(webhook_events.delete().where(webhook_events.c.id.in_([e.id for e in events])))
            return len(events)

    def has_work(self, now: float) -> bool:
        """Whether the outbox holds events or a task is due: a cheap read, so idle workers never write."""
        if self.store.fetch_one("SELECT 1 FROM webhook_events LIMIT 1", {}) is not None:
            return True
        return self.store.fetch_one(
            "SELECT 1 FROM webhook_tasks WHERE status IN ('Pending', 'Running') AND next_attempt_at <= :now LIMIT 1",
            {"now": now}) is not None

    def claim(self, holder: str, default_timeout: float, limit: int) -> list[Delivery]:
        """Claim up to ``limit`` due tasks: each is Running, and due again (to any worker) when its claim runs
        out without an outcome, its target's timeout plus a margin after now."""
        now = time.time()
        with self.store.write() as conn:
            due = sa.select(webhook_tasks.c.id).where(
                webhook_tasks.c.status.in_([PENDING, RUNNING]), webhook_tasks.c.next_attempt_at <= now) \
                .order_by(webhook_tasks.c.next_attempt_at).limit(limit)
            if not self.store.is_sqlite:
                due = due.with_for_update(skip_locked=True)
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            rows = conn.execute(
                sa.select(webhook_tasks.c.id, webhook_tasks.c.execution_id, webhook_tasks.c.address,
                          webhook_tasks.c.run_count, webhook_tasks.c.created_at, webhook_executions.c.policy_id,
                          webhook_executions.c.event_id, webhook_executions.c.event_type,
                          webhook_executions.c.payload_json, webhook_policies.c.project_id,
                          webhook_policies.c.targets_json)
                .join(webhook_executions, webhook_executions.c.id == webhook_tasks.c.execution_id)
                .join(webhook_policies, webhook_policies.c.id == webhook_executions.c.policy_id)
                .where(webhook_tasks.c.id.in_(ids))).all()
            deliveries = []
            holds: dict[float, list[int]] = {}
            for row in rows:
                # The target as the policy holds it now: a changed secret or header applies to retries too.
                targets = [Target.from_json(t) for t in json.loads(row.targets_json)]
                target = next((t for t in targets if t.address == row.address), None)
                timeout = (target.timeout if target and target.timeout else None) or default_timeout
                holds.setdefault(timeout + CLAIM_MARGIN_SECONDS, []).append(row.id)
                deliveries.append(Delivery(row.id, row.execution_id, row.policy_id, row.project_id, row.event_id,
                                           row.event_type, json.loads(row.payload_json), target, row.run_count,
                                           row.created_at, timeout))
            for hold, task_ids in holds.items():
                conn.execute(webhook_tasks.update().where(webhook_tasks.c.id.in_(task_ids)).values(
                    status=RUNNING, claimed_by=holder, next_attempt_at=now + hold, updated_at=now,
                    start_time=sa.func.coalesce(webhook_tasks.c.start_time, now)))
        return deliveries

    def purge(self, before: float) -> int:
        """Forget executions made before ``before`` whose tasks are all done (their tasks and logs go with them);
        how many. Pull events alone would otherwise grow the history without end."""
        unfinished = sa.select(webhook_tasks.c.execution_id).where(webhook_tasks.c.status.in_([PENDING, RUNNING]))
        with self.store.write() as conn:
            old = sa.select(webhook_executions.c.id).where(webhook_executions.c.created_at < before,
                                                           webhook_executions.c.id.not_in(unfinished)).limit(5000)
            ids = list(conn.execute(old).scalars())
            if ids:
                conn.execute(webhook_tasks.delete().where(webhook_tasks.c.execution_id.in_(ids)))
                conn.execute(webhook_executions.delete().where(webhook_executions.c.id.in_(ids)))
            return len(ids)

    def finish(self, task_id: int, holder: str, status: str, next_attempt_at: float | None, line: str) -> bool:
        """Record an attempt's outcome (Success; Pending again at ``next_attempt_at``; Error, given up) and its
        log line; False when the claim had run out and another worker has the task now."""
        now = time.time()
        terminal = status in (SUCCESS, ERROR)
        with self.store.write() as conn:
            result = conn.execute(webhook_tasks.update().where(
                webhook_tasks.c.id == task_id, webhook_tasks.c.claimed_by == holder,
                webhook_tasks.c.status == RUNNING).values(
                status=status, run_count=webhook_tasks.c.run_count + 1, claimed_by=None,
                next_attempt_at=next_attempt_at if next_attempt_at is not None else now,
                log=webhook_tasks.c.log + line, updated_at=now, end_time=now if terminal else None))
            return result.rowcount > 0
