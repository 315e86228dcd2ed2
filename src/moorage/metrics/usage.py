"""Values that would take a scan (blob count and bytes, per-project repositories, artifacts, pulls and quota
usage, garbage collection's history, the webhook backlog): computed off the event loop at most every
``max_age`` seconds and kept, so a scrape never waits on the database, answers as fast at 100,000 artifacts as
at ten, and still answers (with the last values it has) while the database is down.

Per-project usage and quota come from the quota feature's maintained aggregate (``project_quotas``), never
from summing blob sizes at scrape time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from moorage.meta.schema import (
    blobs,
    gc_runs,
    manifests,
    projects,
    repositories,
    uploads,
    webhook_events,
    webhook_tasks,
)
from moorage.meta.store import MetaStore

log = logging.getLogger("moorage.metrics")


@dataclass
class ProjectUsage:
    repositories: int = 0
    artifacts: int = 0
    pulls: int = 0
    used: int | None = None
    hard: int | None = None


@dataclass
class Snapshot:
    taken_at: float
    blobs: int = 0
    blob_bytes: int = 0
    open_uploads: int = 0
    projects: dict[str, ProjectUsage] = field(default_factory=dict)
    #: status -> (runs, bytes freed, seconds taken), real runs only (no dry runs).
    gc: dict[str, tuple[int, int, float]] = field(default_factory=dict)
    webhook_backlog: dict[str, int] = field(default_factory=dict)


def _quota_rows(store: MetaStore) -> list[Any]:
    """(project name, hard, used) from the quota feature's table, when this database has it (its own
    connection: on PostgreSQL a failed statement spoils the rest of its transaction)."""
    from moorage.meta import schema

    table = getattr(schema, "project_quotas", None)
    if table is None:
        return []
    try:
        with store.read() as conn:
            return list(conn.execute(sa.select(projects.c.name, table.c.hard, table.c.used)
                                     .join(table, table.c.project_id == projects.c.id)))
    except sa.exc.ProgrammingError:
        return []  # an older schema without the table
    except sa.exc.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


def compute(store: MetaStore) -> Snapshot:
    snapshot = Snapshot(taken_at=time.time())
    with store.read() as conn:
        count, total = conn.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(blobs.c.size), 0))).one()
        snapshot.blobs, snapshot.blob_bytes = int(count), int(total)
        snapshot.open_uploads = int(conn.execute(sa.select(sa.func.count()).select_from(uploads)).scalar_one())
        usage = snapshot.projects
        for (name,) in conn.execute(sa.select(projects.c.name)):
            usage[name] = ProjectUsage()
        per_repo: dict[int, int] = dict(conn.execute(sa.select(manifests.c.repository_id, sa.func.count())
                                                     .group_by(manifests.c.repository_id)).all())
        for repo_id, name, pulls in conn.execute(sa.select(repositories.c.id, repositories.c.name,
                                                           repositories.c.pull_count)):
            project = usage.get(name.split("/", 1)[0]) if "/" in name else None
            if project is not None:
                project.repositories += 1
                project.artifacts += int(per_repo.get(repo_id, 0))
                project.pulls += int(pulls)
        for name, hard, used in _quota_rows(store):
            if name in usage:
                usage[name].hard, usage[name].used = int(hard), int(used)
        for status, runs, freed, seconds in conn.execute(
                sa.select(gc_runs.c.status, sa.func.count(), sa.func.coalesce(sa.func.sum(gc_runs.c.bytes_freed), 0),
                          sa.func.coalesce(sa.func.sum(gc_runs.c.updated_at - gc_runs.c.created_at), 0))
                .where(gc_runs.c.dry_run.is_(False)).group_by(gc_runs.c.status)):
            snapshot.gc[status] = (int(runs), int(freed), float(seconds))
        snapshot.webhook_backlog = {status: int(n) for status, n in conn.execute(
            sa.select(webhook_tasks.c.status, sa.func.count()).where(webhook_tasks.c.status.in_(["Pending", "Running"]))
            .group_by(webhook_tasks.c.status))}
        snapshot.webhook_backlog["Outbox"] = int(conn.execute(sa.select(sa.func.count())
                                                              .select_from(webhook_events)).scalar_one())
    return snapshot


class UsageCache:
    def __init__(self, store: MetaStore, max_age: float = 30.0) -> None:
        self.store = store
        self.max_age = max_age
        self.snapshot: Snapshot | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._failing = False

    async def _compute(self) -> None:
        try:
            # Not on the store's limiter: a scrape's refresh must not queue behind requests, nor they behind it.
            self.snapshot = await anyio.to_thread.run_sync(compute, self.store, abandon_on_cancel=True)
            self._failing = False
        except Exception as exc:
            if not self._failing:
                log.warning("metrics: cannot read usage from the metadata database, serving the last values: %s",
                            getattr(exc, "orig", None) or exc)
            self._failing = True

    async def current(self, wait: float) -> Snapshot | None:
        """The latest snapshot; a refresh starts when it is older than ``max_age``, and is waited for (up to
        ``wait`` seconds) only when there is nothing to answer with yet."""
        stale = self.snapshot is None or time.time() - self.snapshot.taken_at > self.max_age
        if stale and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.get_running_loop().create_task(self._compute())
        if self.snapshot is None and self._refresh is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._refresh), wait)
        return self.snapshot

    async def close(self) -> None:
        if self._refresh is not None and not self._refresh.done():
            self._refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresh


class UsageCollector(Collector):
    def __init__(self, snapshot: Snapshot | None) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        if s is None:
            return
        yield GaugeMetricFamily("moorage_usage_age_seconds", "Seconds since these usage values were read",
                                value=max(time.time() - s.taken_at, 0.0))
        yield GaugeMetricFamily("moorage_storage_blobs", "Blobs in the content store", value=s.blobs)
        yield GaugeMetricFamily("moorage_storage_blob_bytes", "Bytes of the blobs in the content store",
                                value=s.blob_bytes)
        yield GaugeMetricFamily("moorage_upload_sessions_open", "Blob upload sessions open", value=s.open_uploads)
        families = {
            "harbor_project_repo_total": ("Repositories of the project", lambda p: p.repositories),
            "harbor_project_artifact_total": ("Artifacts of the project", lambda p: p.artifacts),
            "harbor_artifact_pulled": ("Manifest pulls of the project's artifacts", lambda p: p.pulls),
            "harbor_project_quota_usage_byte": ("Storage the project uses, as its quota counts it", lambda p: p.used),
            "harbor_project_quota_byte": ("The project's storage quota in bytes (-1: unlimited)", lambda p: p.hard),
        }
        for name, (documentation, value) in families.items():
            family = GaugeMetricFamily(name, documentation, labels=["project_name"])
            for project, usage in sorted(s.projects.items()):
                found = value(usage)
                if found is not None:
                    family.add_metric([project], found)
            yield family
        runs = CounterMetricFamily("moorage_gc_runs", "Garbage collection runs (not dry runs), by final status",
                                   labels=["status"])
        freed = CounterMetricFamily("moorage_gc_bytes_freed", "Bytes garbage collection has freed")
        seconds = CounterMetricFamily("moorage_gc_run_seconds", "Seconds garbage collection runs have taken")
        for status, (count, _, _) in sorted(s.gc.items()):
            runs.add_metric([status], count)
        freed.add_metric([], sum(v[1] for v in s.gc.values()))
        seconds.add_metric([], sum(v[2] for v in s.gc.values()))
        yield from (runs, freed, seconds)
        backlog = GaugeMetricFamily("moorage_webhook_backlog", "Webhook events not yet fanned out (Outbox) and "
                                    "deliveries waiting or under way", labels=["state"])
        for state in ("Outbox", "Pending", "Running"):
            backlog.add_metric([state], s.webhook_backlog.get(state, 0))
        yield backlog
