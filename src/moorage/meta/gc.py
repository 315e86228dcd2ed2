"""Garbage collection's queries: a consistent view of every reference, and deletions that re-check it.

The database holds every reference a blob or manifest can have (tag -> manifest, index -> child,
referrer -> subject, manifest -> blob, repository -> blob link with its lease). Garbage collection plans
on one snapshot of them (``snapshot``) and then deletes item by item, each deletion in a transaction that
checks again that nothing references the item now: whatever a push did since the snapshot wins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import sqlalchemy as sa

from moorage.meta.quotas import QuotaModel
from moorage.meta.schema import (
    blob_tombstones,
    blobs,
    gc_runs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
)
from moorage.meta.store import MetaStore


@dataclass(frozen=True, slots=True)
class ManifestRow:
    id: int
    repository_id: int
    digest: str
    subject: str | None


@dataclass(frozen=True, slots=True)
class LinkRow:
    repository_id: int
    digest: str
    leased_until: float


@dataclass
class Snapshot:
    """Every reference at one moment."""

    taken_at: float
    manifests: dict[int, ManifestRow] = field(default_factory=dict)
    tagged: set[int] = field(default_factory=set)
    #: manifest id -> (digest, kind) of what it references
    references: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    links: list[LinkRow] = field(default_factory=list)
    #: digest -> (size, created_at)
    blobs: dict[str, tuple[int, float]] = field(default_factory=dict)
    tombstones: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    trigger: str
    dry_run: bool
    delete_untagged: bool
    status: str
    blobs_deleted: int
    manifests_deleted: int
    bytes_freed: int
    log: str
    created_at: float
    updated_at: float


_RUN_COLUMNS = (gc_runs.c.id, gc_runs.c.trigger, gc_runs.c.dry_run, gc_runs.c.delete_untagged, gc_runs.c.status,
                gc_runs.c.blobs_deleted, gc_runs.c.manifests_deleted, gc_runs.c.bytes_freed, gc_runs.c.log,
                gc_runs.c.created_at, gc_runs.c.updated_at)
#: Statuses of a run that has not finished.
_GOING = ("Running", "Stopping")


class GCModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store
        self.quotas = QuotaModel(store)

    def snapshot(self) -> Snapshot:
        view = Snapshot(taken_at=time.time())
        with self.store.snapshot() as conn:
            for row in conn.execute(sa.select(manifests.c.id, manifests.c.repository_id, manifests.c.digest,
                                              manifests.c.subject)):
                view.manifests[row.id] = ManifestRow(row.id, row.repository_id, row.digest, row.subject)
            view.tagged = {mid for mid, in conn.execute(sa.select(tags.c.manifest_id).distinct())}
            for mid, digest, kind in conn.execute(sa.select(manifest_references.c.manifest_id,
                                                            manifest_references.c.digest, manifest_references.c.kind)):
                view.references.setdefault(mid, []).append((digest, kind))
            view.links = [LinkRow(*row) for row in conn.execute(sa.select(
                repository_blobs.c.repository_id, repository_blobs.c.digest, repository_blobs.c.leased_until))]
            view.blobs = {digest: (size, created) for digest, size, created in conn.execute(
                sa.select(blobs.c.digest, blobs.c.size, blobs.c.created_at))}
            view.tombstones = {digest: size for digest, size in conn.execute(
                sa.select(blob_tombstones.c.digest, blob_tombstones.c.size))}
        return view

    # -- deletions, each re-checked in its own transaction ------------------------------------------------
    def delete_manifest_if_unreferenced(self, manifest_id: int) -> bool:
        """Delete an untagged manifest that no manifest of its repository references (as an index's child)
        and whose subject, if it has one, is gone: what a push made meanwhile keeps it."""
        m = manifests.alias("m")
        parent = manifests.alias("parent")
        subject_alive = sa.select(parent.c.id).where(parent.c.repository_id == m.c.repository_id,
                                                     parent.c.digest == m.c.subject)
        referenced = (sa.select(manifest_references.c.manifest_id)
                      .join(parent, parent.c.id == manifest_references.c.manifest_id)
                      .where(parent.c.repository_id == m.c.repository_id,
                             manifest_references.c.digest == m.c.digest))
        with self.store.write() as conn:
            repository = conn.execute(sa.select(repositories.c.name)
                                      .join(manifests, manifests.c.repository_id == repositories.c.id)
                                      .where(manifests.c.id == manifest_id)).scalar()
            # The project's quota before anything else of the project, as every change of its references takes it.
            account = self.quotas.hold(conn, repository) if repository is not None else None
            keep = conn.execute(sa.select(m.c.id).where(
                m.c.id == manifest_id,
                sa.or_(sa.exists(sa.select(tags.c.manifest_id).where(tags.c.manifest_id == m.c.id)),
                       sa.exists(referenced), sa.exists(subject_alive)))).first()
            if keep is not None:
                return False
            self.quotas.release(conn, account, manifests.c.id == manifest_id)
            return conn.execute(manifests.delete().where(manifests.c.id == manifest_id)).rowcount > 0

    def expire_links(self, links: list[LinkRow], now: float) -> int:
        """Unlink blobs from repositories once their lease has passed and no manifest there references them
        (each re-checked; one transaction for the lot)."""
        repository_id, digest = sa.bindparam("r", type_=sa.Integer), sa.bindparam("d", type_=sa.String)
        referenced = (sa.select(manifest_references.c.manifest_id)
                      .join(manifests, manifests.c.id == manifest_references.c.manifest_id)
                      .where(manifests.c.repository_id == repository_id, manifest_references.c.digest == digest))
        stmt = repository_blobs.delete().where(
            repository_blobs.c.repository_id == repository_id, repository_blobs.c.digest == digest,
            repository_blobs.c.leased_until < now, ~sa.exists(referenced))
        with self.store.write() as conn:
            return sum(conn.execute(stmt, {"r": link.repository_id, "d": link.digest}).rowcount for link in links)

    def tombstone(self, digests: list[str], created_before: float) -> dict[str, int]:
        """Decide the deletion of each blob and record it, in one transaction: a blob goes if nothing links or
        references it and it is older than ``created_before``. Returns the size of each that goes."""
        digest = sa.bindparam("d", type_=sa.String)
        linked = sa.select(repository_blobs.c.digest).where(repository_blobs.c.digest == digest)
        referenced = sa.select(manifest_references.c.digest).where(manifest_references.c.digest == digest)
        check = sa.select(blobs.c.size).where(blobs.c.digest == digest, blobs.c.created_at < created_before,
                                              ~sa.exists(linked), ~sa.exists(referenced))
        doomed: dict[str, int] = {}
        with self.store.write() as conn:
            for candidate in sorted(digests):  # one order for the digest locks: no deadlock with another run
                self.store.lock_digest(conn, candidate)
                size = conn.execute(check, {"d": candidate}).scalar()
                if size is not None:
                    doomed[candidate] = int(size)
            if doomed:
                conn.execute(blobs.delete().where(blobs.c.digest.in_(list(doomed))))
                now = time.time()
                conn.execute(self.store.insert_ignore(blob_tombstones),
                             [{"digest": d, "size": size, "created_at": now} for d, size in doomed.items()])
        return doomed

    def clear_tombstones(self, digests: list[str]) -> None:
        with self.store.write() as conn:
            conn.execute(blob_tombstones.delete().where(blob_tombstones.c.digest.in_(digests)))

    # -- history --------------------------------------------------------------------------------------
    def start_run(self, trigger: str, dry_run: bool, delete_untagged: bool, *, alone: bool = False) -> int | None:
        """Record a run as started; with ``alone``, only when no other run is going (None otherwise)."""
        now = time.time()
        with self.store.write() as conn:
            if alone and conn.execute(sa.select(gc_runs.c.id).where(gc_runs.c.status.in_(_GOING))).first():
                return None
            return int(conn.execute(gc_runs.insert().values(
                trigger=trigger, dry_run=dry_run, delete_untagged=delete_untagged, status="Running",
                created_at=now, updated_at=now).returning(gc_runs.c.id)).scalar_one())

    def finish_run(self, run_id: int, status: str, blobs_deleted: int, manifests_deleted: int, bytes_freed: int,
                   log: str) -> None:
        with self.store.write() as conn:
            conn.execute(gc_runs.update().where(gc_runs.c.id == run_id).values(
                status=status, blobs_deleted=blobs_deleted, manifests_deleted=manifests_deleted,
                bytes_freed=bytes_freed, log=log, updated_at=time.time()))

    def request_stop(self, run_id: int) -> bool:
        """Ask a running run to stop; False when it is not running."""
        with self.store.write() as conn:
            return conn.execute(gc_runs.update().where(gc_runs.c.id == run_id, gc_runs.c.status == "Running")
                                .values(status="Stopping", updated_at=time.time())).rowcount > 0

    def stop_requested(self, run_id: int) -> bool:
        """Whether the run was asked to stop; the look also tells that the run is alive (``abandon_stale``)."""
        with self.store.write() as conn:
            conn.execute(gc_runs.update().where(gc_runs.c.id == run_id).values(updated_at=time.time()))
            status = conn.execute(sa.select(gc_runs.c.status).where(gc_runs.c.id == run_id)).scalar()
        return bool(status == "Stopping")

    def abandon_stale(self, quiet_for: float) -> int:
        """Mark runs that have not shown life for ``quiet_for`` seconds (their process died) as ``Error``; a run
        alive anywhere touches its row at every batch of deletions (``moorage.core.gc.BATCH``)."""
        with self.store.write() as conn:
            return conn.execute(gc_runs.update().where(
                gc_runs.c.status.in_(_GOING), gc_runs.c.updated_at < time.time() - quiet_for).values(
                status="Error", log=gc_runs.c.log + "the process running it stopped before it finished\n",
                updated_at=time.time())).rowcount

    def runs(self, offset: int, limit: int) -> tuple[int, list[Run]]:
        with self.store.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(gc_runs)).scalar_one()
            rows = conn.execute(sa.select(*_RUN_COLUMNS).order_by(gc_runs.c.id.desc()).offset(offset).limit(limit))
            return int(total), [Run(*row) for row in rows]

    def run(self, run_id: int) -> Run | None:
        with self.store.read() as conn:
            row = conn.execute(sa.select(*_RUN_COLUMNS).where(gc_runs.c.id == run_id)).first()
        return Run(*row) if row else None
