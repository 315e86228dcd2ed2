"""Tag policies in the metadata store: immutable tag rules, retention policies with their runs and per-repository
tasks, and the views of a repository's content that retention plans on and immutability checks against.

Methods are blocking and short; callers reach them through ``MetaStore.run`` / ``query``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from moorage.meta import outbox
from moorage.meta.schema import (
    immutable_rules,
    manifest_references,
    manifests,
    projects,
    repositories,
    retention_executions,
    retention_policies,
    retention_tasks,
    schedules,
    tags,
)
from moorage.meta.store import MetaStore

#: Executions that have not finished.
GOING = ("Running", "Stopping")
#: The prefix of a retention policy's schedule name (``retention:<policy id>``).
SCHEDULE_PREFIX = "retention:"


@dataclass(frozen=True, slots=True)
class StoredRule:
    id: int
    project_id: int
    priority: int
    disabled: bool
    #: The rest of Harbor's ImmutableRule: template, action, params, tag_selectors, scope_selectors.
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    id: int
    project_id: int
    project_name: str
    #: Harbor's RetentionPolicy without its id: algorithm, rules, trigger, scope.
    body: dict[str, Any]
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Execution:
    id: int
    policy_id: int
    trigger: str
    dry_run: bool
    status: str
    started_at: float
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    execution_id: int
    repository: str
    status: str
    total: int
    retained: int
    started_at: float
    ended_at: float | None


@dataclass(frozen=True, slots=True)
class TagView:
    name: str
    #: When the tag last moved here (pushed or re-pushed).
    pushed_at: float
    pulled_at: float | None


@dataclass(slots=True)
class ManifestView:
    id: int
    digest: str
    created_at: float
    pull_time: float | None
    subject: str | None
    tags: list[TagView] = field(default_factory=list)
    #: Digests of the manifests this one (an index) lists.
    children: list[str] = field(default_factory=list)


_EXECUTION = (retention_executions.c.id, retention_executions.c.policy_id, retention_executions.c.trigger,
              retention_executions.c.dry_run, retention_executions.c.status, retention_executions.c.started_at,
              retention_executions.c.ended_at)
_TASK = (retention_tasks.c.id, retention_tasks.c.execution_id, retention_tasks.c.repository, retention_tasks.c.status,
         retention_tasks.c.total, retention_tasks.c.retained, retention_tasks.c.started_at, retention_tasks.c.ended_at)


def _like_prefix(project: str) -> str:
    escaped = project.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}/%"


def _rule(row: Any) -> StoredRule:
    return StoredRule(row.id, row.project_id, row.priority, bool(row.disabled), json.loads(row.rule_json))


class TagPolicyModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store

    # -- immutable tag rules ------------------------------------------------------------------------
    def immutable_rules(self, project_id: int) -> list[StoredRule]:
        with self.store.read() as conn:
            rows = conn.execute(sa.select(immutable_rules).where(immutable_rules.c.project_id == project_id)
                                .order_by(immutable_rules.c.priority, immutable_rules.c.id))
            return [_rule(row) for row in rows]

    def enabled_immutable_rules(self, project_name: str) -> list[StoredRule]:
        """The enabled rules of the project named ``project_name``: what a push or a delete is checked against."""
        with self.store.read() as conn:
            rows = conn.execute(sa.select(immutable_rules)
                                .join(projects, projects.c.id == immutable_rules.c.project_id)
                                .where(projects.c.name == project_name, immutable_rules.c.disabled == sa.false())
                                .order_by(immutable_rules.c.priority, immutable_rules.c.id))
            return [_rule(row) for row in rows]

    def add_immutable_rule(self, project_id: int, priority: int, disabled: bool, body: dict[str, Any],
                           limit: int) -> int | None:
        """The new rule's id; None when the project already has ``limit`` rules."""
        now = time.time()
        with self.store.write() as conn:
            # Serialises rule changes of the project on PostgreSQL (SQLite's writes already run one at a time).
            self._lock_project(conn, project_id)
            count = conn.execute(sa.select(sa.func.count()).select_from(immutable_rules)
                                 .where(immutable_rules.c.project_id == project_id)).scalar_one()
            if count >= limit:
                return None
            return int(conn.execute(immutable_rules.insert().values(
                project_id=project_id, priority=priority, disabled=disabled, rule_json=json.dumps(body),
                created_at=now, updated_at=now).returning(immutable_rules.c.id)).scalar_one())

    def update_immutable_rule(self, project_id: int, rule_id: int, priority: int, disabled: bool,
                              body: dict[str, Any]) -> bool:
        with self.store.write() as conn:
            return conn.execute(immutable_rules.update().where(
                immutable_rules.c.id == rule_id, immutable_rules.c.project_id == project_id).values(
                priority=priority, disabled=disabled, rule_json=json.dumps(body), updated_at=time.time())).rowcount > 0

    def delete_immutable_rule(self, project_id: int, rule_id: int) -> bool:
        with self.store.write() as conn:
            return conn.execute(immutable_rules.delete().where(
                immutable_rules.c.id == rule_id, immutable_rules.c.project_id == project_id)).rowcount > 0

    def _lock_project(self, conn: sa.Connection, project_id: int) -> None:
        if not self.store.is_sqlite:
            conn.execute(sa.select(projects.c.id).where(projects.c.id == project_id).with_for_update())

    # -- what immutability checks against -------------------------------------------------------------
    def digests_of_tags(self, repo: str, names: list[str]) -> dict[str, str]:
        """tag -> digest of those of ``names`` that exist in ``repo``."""
        if not names:
            return {}
        query = (sa.select(tags.c.name, manifests.c.digest).join(manifests, manifests.c.id == tags.c.manifest_id)
                 .join(repositories, repositories.c.id == tags.c.repository_id)
                 .where(repositories.c.name == repo, tags.c.name.in_(names)))
        with self.store.read() as conn:
            return {row[0]: row[1] for row in conn.execute(query)}

    def tags_holding(self, repo: str, digest: str) -> list[str]:
        """The tags whose content includes the manifest ``digest``: its own, and those of every index of the
        repository that lists it, however deep."""
        with self.store.read() as conn:
            repo_id = conn.execute(sa.select(repositories.c.id).where(repositories.c.name == repo)).scalar()
            if repo_id is None:
                return []
            found: set[str] = set()
            seen = {digest}
            pending = [digest]
            while pending:
                batch, pending = pending[:500], pending[500:]
                ids = dict(conn.execute(sa.select(manifests.c.id, manifests.c.digest).where(
                    manifests.c.repository_id == repo_id, manifests.c.digest.in_(batch))).all())
                if not ids:
                    continue
                found.update(name for name, in conn.execute(sa.select(tags.c.name).where(
                    tags.c.repository_id == repo_id, tags.c.manifest_id.in_(list(ids)))))
                parents = conn.execute(sa.select(manifests.c.digest).join(
                    manifest_references, manifest_references.c.manifest_id == manifests.c.id).where(
                    manifests.c.repository_id == repo_id, manifest_references.c.kind == "manifest",
                    manifest_references.c.digest.in_(list(ids.values()))))
                for parent, in parents:
                    if parent not in seen:
                        seen.add(parent)
                        pending.append(parent)
            return sorted(found)

    def tags_of_repository(self, repo: str) -> list[str]:
        query = (sa.select(tags.c.name).join(repositories, repositories.c.id == tags.c.repository_id)
                 .where(repositories.c.name == repo).order_by(tags.c.name))
        with self.store.read() as conn:
            return [name for name, in conn.execute(query)]

    # -- what retention plans on ----------------------------------------------------------------------
    def repositories_of(self, project_name: str) -> list[str]:
        with self.store.read() as conn:
            return [name for name, in conn.execute(sa.select(repositories.c.name).where(
                repositories.c.name.like(_like_prefix(project_name), escape="\\")).order_by(repositories.c.name))]

    def repository_view(self, repo: str) -> list[ManifestView]:
        """Every manifest of ``repo`` with its tags and the manifests it lists (a plan; every deletion it leads to
        is checked again when it is made)."""
        with self.store.read() as conn:
            repo_id = conn.execute(sa.select(repositories.c.id).where(repositories.c.name == repo)).scalar()
            if repo_id is None:
                return []
            views = {row.id: ManifestView(row.id, row.digest, row.created_at, row.pull_time, row.subject)
                     for row in conn.execute(sa.select(manifests.c.id, manifests.c.digest, manifests.c.created_at,
                                                       manifests.c.pull_time, manifests.c.subject)
                                             .where(manifests.c.repository_id == repo_id))}
            for row in conn.execute(sa.select(tags.c.manifest_id, tags.c.name, tags.c.updated_at, tags.c.pull_time)
                                    .where(tags.c.repository_id == repo_id).order_by(tags.c.name)):
                if row.manifest_id in views:
                    views[row.manifest_id].tags.append(TagView(row.name, row.updated_at, row.pull_time))
            for ref in conn.execute(sa.select(manifest_references.c.manifest_id, manifest_references.c.digest)
                                    .join(manifests, manifests.c.id == manifest_references.c.manifest_id)
                                    .where(manifests.c.repository_id == repo_id,
                                           manifest_references.c.kind == "manifest")):
                views[ref.manifest_id].children.append(ref.digest)
            return sorted(views.values(), key=lambda v: v.id)

    def tags_of(self, repo: str, digest: str) -> set[str]:
        query = (sa.select(tags.c.name).join(manifests, manifests.c.id == tags.c.manifest_id)
                 .join(repositories, repositories.c.id == manifests.c.repository_id)
                 .where(repositories.c.name == repo, manifests.c.digest == digest))
        with self.store.read() as conn:
            return {name for name, in conn.execute(query)}

    # -- retention policies -----------------------------------------------------------------------------
    def create_policy(self, project_id: int, body: dict[str, Any]) -> int | None:
        """The new policy's id, recorded as the project's ``retention_id`` in the same transaction; None when the
        project has a policy already."""
        now = time.time()
        with self.store.write() as conn:
            policy_id = self.store.insert_new(conn, retention_policies, retention_policies.c.id, project_id=project_id,
                                              policy_json=json.dumps(body), created_at=now, updated_at=now)
            if policy_id is None:
                return None
            self._set_retention_id(conn, project_id, str(policy_id))
            return int(policy_id)

    def _set_retention_id(self, conn: sa.Connection, project_id: int, value: str | None) -> None:
        stored = conn.execute(sa.select(projects.c.metadata_json).where(projects.c.id == project_id)
                              .with_for_update()).scalar()
        metadata = json.loads(stored or "{}")
        if value is None:
            metadata.pop("retention_id", None)
        else:
            metadata["retention_id"] = value
        conn.execute(projects.update().where(projects.c.id == project_id).values(metadata_json=json.dumps(metadata)))

    def policy(self, policy_id: int) -> StoredPolicy | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(retention_policies, projects.c.name.label("project_name"))
                               .join(projects, projects.c.id == retention_policies.c.project_id)
                               .where(retention_policies.c.id == policy_id)).first()
        if row is None:
            return None
        return StoredPolicy(row.id, row.project_id, row.project_name, json.loads(row.policy_json), row.created_at,
                            row.updated_at)

    def update_policy(self, policy_id: int, body: dict[str, Any]) -> bool:
        with self.store.write() as conn:
            return conn.execute(retention_policies.update().where(retention_policies.c.id == policy_id).values(
                policy_json=json.dumps(body), updated_at=time.time())).rowcount > 0

    def delete_policy(self, policy_id: int) -> bool:
        """Delete the policy, its runs and its schedule, and clear the project's ``retention_id``."""
        with self.store.write() as conn:
            project_id = conn.execute(sa.select(retention_policies.c.project_id)
                                      .where(retention_policies.c.id == policy_id)).scalar()
            if project_id is None:
                return False
            executions = sa.select(retention_executions.c.id).where(retention_executions.c.policy_id == policy_id)
            conn.execute(retention_tasks.delete().where(retention_tasks.c.execution_id.in_(executions)))
            conn.execute(retention_executions.delete().where(retention_executions.c.policy_id == policy_id))
            conn.execute(retention_policies.delete().where(retention_policies.c.id == policy_id))
            conn.execute(schedules.delete().where(schedules.c.name == f"{SCHEDULE_PREFIX}{policy_id}"))
            self._set_retention_id(conn, project_id, None)
            return True

    def due_schedules(self, now: float) -> list[str]:
        """Names of the retention schedules whose next run has come."""
        with self.store.read() as conn:
            return [name for name, in conn.execute(sa.select(schedules.c.name).where(
                schedules.c.name.like(f"{SCHEDULE_PREFIX}%"), schedules.c.next_run <= now)
                .order_by(schedules.c.name))]

    # -- runs ---------------------------------------------------------------------------------------------
    def start_execution(self, policy_id: int, trigger: str, dry_run: bool) -> int | None:
        """Record a run as started; None while another run of the policy is going."""
        now = time.time()
        with self.store.write() as conn:
            conn.execute(sa.select(retention_policies.c.id).where(retention_policies.c.id == policy_id)
                         .with_for_update())
            if conn.execute(sa.select(retention_executions.c.id).where(
                    retention_executions.c.policy_id == policy_id,
                    retention_executions.c.status.in_(GOING))).first():
                return None
            return int(conn.execute(retention_executions.insert().values(
                policy_id=policy_id, trigger=trigger, dry_run=dry_run, status="Running", started_at=now,
                updated_at=now).returning(retention_executions.c.id)).scalar_one())

    def finish_execution(self, execution_id: int, status: str) -> None:
        now = time.time()
        with self.store.write() as conn:
            conn.execute(retention_executions.update().where(retention_executions.c.id == execution_id).values(
                status=status, ended_at=now, updated_at=now))
            # Webhooks hear of the run's end (TAG_RETENTION) exactly when it is recorded.
            outbox.record(conn, outbox.retention_finished(conn, execution_id, status))

    def request_stop(self, execution_id: int) -> bool:
        with self.store.write() as conn:
            return conn.execute(retention_executions.update().where(
                retention_executions.c.id == execution_id, retention_executions.c.status == "Running").values(
                status="Stopping", updated_at=time.time())).rowcount > 0

    def stop_requested(self, execution_id: int) -> bool:
        """Whether the run was asked to stop; the look also shows the run is alive (``abandon_stale``)."""
        with self.store.write() as conn:
            conn.execute(retention_executions.update().where(retention_executions.c.id == execution_id)
                         .values(updated_at=time.time()))
            status = conn.execute(sa.select(retention_executions.c.status)
                                  .where(retention_executions.c.id == execution_id)).scalar()
        return status == "Stopping"

    def abandon_stale(self, quiet_for: float) -> int:
        """Mark runs quiet for ``quiet_for`` seconds (their process died) as Error, and their open tasks too."""
        cutoff = time.time() - quiet_for
        with self.store.write() as conn:
            stale = [row[0] for row in conn.execute(sa.select(retention_executions.c.id).where(
                retention_executions.c.status.in_(GOING), retention_executions.c.updated_at < cutoff))]
            if not stale:
                return 0
            now = time.time()
            conn.execute(retention_tasks.update().where(retention_tasks.c.execution_id.in_(stale),
                                                        retention_tasks.c.status == "Running").values(
                status="Error", ended_at=now, log=retention_tasks.c.log + "the process running it stopped\n"))
            conn.execute(retention_executions.update().where(retention_executions.c.id.in_(stale)).values(
                status="Error", ended_at=now, updated_at=now))
            return len(stale)

    def execution(self, execution_id: int) -> Execution | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(*_EXECUTION).where(retention_executions.c.id == execution_id)).first()
        return Execution(*row) if row else None

    def executions(self, policy_id: int, offset: int, limit: int) -> tuple[int, list[Execution]]:
        where = retention_executions.c.policy_id == policy_id
        with self.store.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(retention_executions).where(where)).scalar_one()
            rows = conn.execute(sa.select(*_EXECUTION).where(where).order_by(retention_executions.c.id.desc())
                                .offset(offset).limit(limit))
            return int(total), [Execution(*row) for row in rows]

    def start_task(self, execution_id: int, repository: str) -> int:
        now = time.time()
        with self.store.write() as conn:
            conn.execute(retention_executions.update().where(retention_executions.c.id == execution_id)
                         .values(updated_at=now))
            return int(conn.execute(retention_tasks.insert().values(
                execution_id=execution_id, repository=repository, status="Running", started_at=now)
                .returning(retention_tasks.c.id)).scalar_one())

    def finish_task(self, task_id: int, status: str, total: int, retained: int, log: str) -> None:
        with self.store.write() as conn:
            conn.execute(retention_tasks.update().where(retention_tasks.c.id == task_id).values(
                status=status, total=total, retained=retained, log=log, ended_at=time.time()))

    def tasks(self, execution_id: int, offset: int, limit: int) -> tuple[int, list[Task]]:
        where = retention_tasks.c.execution_id == execution_id
        with self.store.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(retention_tasks).where(where)).scalar_one()
            rows = conn.execute(sa.select(*_TASK).where(where).order_by(retention_tasks.c.id)
                                .offset(offset).limit(limit))
            return int(total), [Task(*row) for row in rows]

    def task_log(self, execution_id: int, task_id: int) -> str | None:
        with self.store.read() as conn:
            return conn.execute(sa.select(retention_tasks.c.log).where(
                retention_tasks.c.id == task_id, retention_tasks.c.execution_id == execution_id)).scalar()
