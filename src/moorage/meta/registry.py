"""The registry's model layer: every query the distribution API makes, each in one transaction.

Methods are blocking and short; the HTTP layer calls them through ``MetaStore.run``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from moorage.meta import outbox
from moorage.meta.quotas import QuotaModel
from moorage.meta.schema import (
    blob_tombstones,
    blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
    uploads,
)
from moorage.meta.store import MetaStore


class TagTaken(Exception):
    """A tag that must not move (an immutable tag rule holds it) already names other content."""

    def __init__(self, tag: str) -> None:
        super().__init__(f"tag {tag} names other content")
        self.tag = tag


class MissingReferences(Exception):
    """A manifest names blobs or child manifests its repository does not hold (any more)."""

    def __init__(self, blobs: set[str], manifests: set[str]) -> None:
        super().__init__("missing references")
        self.blobs = blobs
        self.manifests = manifests


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: str
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class NewManifest:
    digest: str
    media_type: str
    artifact_type: str | None
    subject: str | None
    annotations: str | None
    content: bytes
    blob_refs: tuple[str, ...]
    manifest_refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Referrer:
    digest: str
    media_type: str
    artifact_type: str | None
    annotations: str | None
    size: int


@dataclass(frozen=True, slots=True)
class Upload:
    id: str
    repository: str
    offset: int
    #: The running SHA-256 of the first ``offset`` bytes (``moorage.core.sha256state``), if kept.
    hash_state: bytes | None = None
    #: What the blob store keeps about the upload at ``offset`` (the S3 driver's multipart parts), if anything.
    store_state: bytes | None = None


# The pull path's lookups, as plain SQL: they run thousands of times a second (see MetaStore.fetch_one).
_REPO_ID = "(SELECT id FROM repositories WHERE name = :repo)"
_MANIFEST_BY_TAG = ("SELECT m.digest, m.media_type, m.content FROM tags t JOIN manifests m ON m.id = t.manifest_id "
                    f"WHERE t.repository_id = {_REPO_ID} AND t.name = :tag")
_MANIFEST_BY_DIGEST = ("SELECT digest, media_type, content FROM manifests "
                       f"WHERE repository_id = {_REPO_ID} AND digest = :digest")
_BLOB_LEASE = ("SELECT b.size, rb.leased_until FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest "
               f"WHERE rb.repository_id = {_REPO_ID} AND rb.digest = :digest")
_BLOB_SIZE = ("SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest "
              f"WHERE rb.repository_id = {_REPO_ID} AND rb.digest = :digest")
_IN_BATCH = 500
# The same, inside a push's write transaction (driver-level: "{mark}" is the driver's placeholder).
_HELD_BLOBS = "SELECT digest FROM repository_blobs WHERE repository_id = {mark} AND digest IN ({marks})"
_HELD_MANIFESTS = "SELECT digest FROM manifests WHERE repository_id = {mark} AND digest IN ({marks})"
# Read twice by every chunk of a chunked push (before and under the session's lock).
_UPLOAD = 'SELECT id, repository, "offset", hash_state, store_state FROM uploads WHERE id = :id'

_repo_id = sa.select(repositories.c.id).where(repositories.c.name == sa.bindparam("repo")).scalar_subquery()


# A one-column select is Select[tuple[int]] to SQLAlchemy 2.0's types and Select[int] to 2.1's: either may be
# installed, so the column's type is left open.
def _count_upto(column: sa.Column[str]) -> sa.Select[Any]:
    """How many upload sessions have ``column`` = :key, counting no further than :cap (all a cap needs)."""
    matching = sa.select(sa.literal(1).label("one")).where(column == sa.bindparam("key")) \
        .limit(sa.bindparam("cap", type_=sa.Integer)).subquery()
    return sa.select(sa.func.count()).select_from(matching)


def _advisory_key(name: str) -> int:
    """A PostgreSQL advisory-lock key (signed 64-bit) for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


#: How long a blob uploaded, mounted or found in a repository is kept for it without a manifest (seconds).
DEFAULT_LEASE_SECONDS = 3600.0


class RegistryModel:
    def __init__(self, store: MetaStore, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self.quotas = QuotaModel(store)
        # The push path's statements, built once and given their values at execution: building a
        # statement costs SQLAlchemy more than running it, and a built one keeps its cache key.
        self._touch_repository = store.upsert(repositories, ["name"], ["updated_at"]).returning(repositories.c.id)
        self._add_blob = store.insert_ignore(blobs)
        # A link made again (a re-upload, a mount) renews its lease.
        self._link_blob = store.upsert(repository_blobs, ["repository_id", "digest"], ["leased_until"])
        self._tombstoned = sa.select(blob_tombstones.c.digest).where(blob_tombstones.c.digest == sa.bindparam("digest"))
        self._add_manifest = store.insert_ignore(manifests)
        self._manifest_id = sa.select(manifests.c.id).where(manifests.c.repository_id == sa.bindparam("repo_id"),
                                                            manifests.c.digest == sa.bindparam("digest"))
        self._add_references = store.insert_ignore(manifest_references)
        self._set_tags = store.upsert(tags, ["repository_id", "name"], ["manifest_id", "updated_at"])
        self._add_upload = uploads.insert()
        self._open_in_repository = _count_upto(uploads.c.repository)
        self._open_by_owner = _count_upto(uploads.c.owner)
        self._advance_upload = uploads.update().where(uploads.c.id == sa.bindparam("upload_id"),
                                                      uploads.c.offset == sa.bindparam("expected"))
        self._delete_upload = uploads.delete().where(uploads.c.id == sa.bindparam("upload_id"))

    # -- repositories ---------------------------------------------------------------------------
    def _ensure_repository(self, conn: sa.Connection, name: str, now: float) -> int:
        """The repository's id, created on first push; its ``updated_at`` moves to ``now`` either way."""
        return conn.execute(self._touch_repository,
                            {"name": name, "created_at": now, "updated_at": now}).scalar_one()

    def repository_exists(self, name: str) -> bool:
        with self.store.read() as conn:
            return conn.execute(sa.select(repositories.c.id).where(repositories.c.name == name)).first() \
                is not None

    def list_repositories(self, n: int | None, last: str | None) -> list[str]:
        sql = "SELECT name FROM repositories" + (" WHERE name > :last" if last else "") + " ORDER BY name" \
            + (" LIMIT :n" if n is not None else "")
        return [name for name, in self.store.fetch_all(sql, {"last": last, "n": n})]

    # -- blobs ----------------------------------------------------------------------------------
    def blob_size(self, repo: str, digest: str) -> int | None:
        """Size of a blob linked into ``repo``, or None."""
        row = self.store.fetch_one(_BLOB_SIZE, {"repo": repo, "digest": digest})
        return row[0] if row else None

    def link_blob(self, repo: str, digest: str, size: int) -> bool:
        """Record a committed blob and link it into ``repo`` with a lease; False (and nothing done) while
        garbage collection is deleting that digest: wait for it, publish the content again, and retry."""
        now = time.time()
        with self.store.write() as conn:
            self.store.lock_digest(conn, digest)
            if conn.execute(self._tombstoned, {"digest": digest}).first() is not None:
                return False
            repo_id = self._ensure_repository(conn, repo, now)
            conn.execute(self._add_blob, {"digest": digest, "size": size, "created_at": now})
            conn.execute(self._link_blob, {"repository_id": repo_id, "digest": digest, "created_at": now,
                                           "leased_until": now + self.lease_seconds})
            return True

    def mount_blob(self, repo: str, source: str, digest: str) -> int | None:
        """Link a blob that ``source`` has into ``repo``, leased; its size, or None when ``source`` lacks it.
        One transaction, so garbage collection cannot take the blob between the look and the link."""
        now = time.time()
        with self.store.write() as conn:
            self.store.lock_digest(conn, digest)
            linked = repository_blobs.join(blobs, blobs.c.digest == repository_blobs.c.digest)
            size = conn.execute(sa.select(blobs.c.size).select_from(linked).where(
                repository_blobs.c.repository_id == _repo_id, blobs.c.digest == digest), {"repo": source}).scalar()
            if size is None:
                return None
            repo_id = self._ensure_repository(conn, repo, now)
            conn.execute(self._link_blob, {"repository_id": repo_id, "digest": digest, "created_at": now,
                                           "leased_until": now + self.lease_seconds})
            return int(size)

    def blob_lease(self, repo: str, digest: str) -> tuple[int, float] | None:
        """(size, leased until) of a blob linked into ``repo``, or None."""
        row = self.store.fetch_one(_BLOB_LEASE, {"repo": repo, "digest": digest})
        return (row[0], row[1]) if row else None

    def renew_lease(self, repo: str, digest: str) -> None:
        """A client found the blob (HEAD) and may reference it next: keep it for another lease."""
        now = time.time()
        with self.store.write() as conn:
            conn.execute(repository_blobs.update().where(
                repository_blobs.c.repository_id == _repo_id, repository_blobs.c.digest == digest)
                .values(leased_until=now + self.lease_seconds), {"repo": repo})

    def unlink_blob(self, repo: str, digest: str) -> bool:
        with self.store.write() as conn:
            result = conn.execute(repository_blobs.delete().where(
                repository_blobs.c.repository_id == _repo_id, repository_blobs.c.digest == digest),
                {"repo": repo})
            return result.rowcount > 0

    # -- manifests ------------------------------------------------------------------------------
    def manifest_by_tag(self, repo: str, tag: str) -> StoredManifest | None:
        row = self.store.fetch_one(_MANIFEST_BY_TAG, {"repo": repo, "tag": tag})
        return StoredManifest(*row) if row else None

    def manifest_by_digest(self, repo: str, digest: str) -> StoredManifest | None:
        row = self.store.fetch_one(_MANIFEST_BY_DIGEST, {"repo": repo, "digest": digest})
        return StoredManifest(*row) if row else None

    def put_manifest(self, repo: str, manifest: NewManifest, tag_names: Iterable[str],
                     operator: str | None = None, fixed: Iterable[str] = ()) -> None:
        """Store a manifest and its tags, once everything it references is in ``repo``: checked in the same
        transaction (``MissingReferences`` otherwise), so garbage collection cannot take a blob between the
        check and the commit. With an ``operator``, the push's events go to the outbox in that transaction.
        Tags in ``fixed`` may be created but not moved (``TagTaken``), decided in the same transaction, so two
        first pushes of one immutable tag cannot both win."""
        now = time.time()
        with self.store.write() as conn:
            # The project's quota first: on PostgreSQL its lock orders this push against the project's others.
            account = self.quotas.hold(conn, repo)
            repo_id = self._ensure_repository(conn, repo, now)
            missing = (set(manifest.blob_refs) - self._held(conn, _HELD_BLOBS, repo_id, manifest.blob_refs),
                       set(manifest.manifest_refs) - self._held(conn, _HELD_MANIFESTS, repo_id, manifest.manifest_refs))
            if missing[0] or missing[1]:
                raise MissingReferences(*missing)
            for tag in sorted(fixed):
                self.store.lock_digest(conn, f"tag {repo_id} {tag}")  # orders first pushes of the tag on PostgreSQL
                current = conn.execute(sa.select(manifests.c.digest).join(tags, tags.c.manifest_id == manifests.c.id)
                                       .where(tags.c.repository_id == repo_id, tags.c.name == tag)).scalar()
                if current is not None and current != manifest.digest:
                    raise TagTaken(tag)
            added = conn.execute(self._add_manifest, {
                "repository_id": repo_id, "digest": manifest.digest, "media_type": manifest.media_type,
                "artifact_type": manifest.artifact_type, "subject": manifest.subject,
                "annotations": manifest.annotations, "size": len(manifest.content), "content": manifest.content,
                "created_at": now}).rowcount
            if added and account is not None:
                # OverQuota rolls the whole push back; a manifest pushed again adds nothing.
                self.quotas.charge(conn, account, manifest.digest, len(manifest.content), manifest.blob_refs)
            manifest_id = conn.execute(self._manifest_id, {"repo_id": repo_id, "digest": manifest.digest}).scalar_one()
            refs = [{"manifest_id": manifest_id, "digest": d, "kind": "blob"} for d in manifest.blob_refs]
            refs += [{"manifest_id": manifest_id, "digest": d, "kind": "manifest"}
                     for d in manifest.manifest_refs]
            if refs:
                conn.execute(self._add_references, refs)
            rows = [{"repository_id": repo_id, "name": t, "manifest_id": manifest_id, "updated_at": now}
                    for t in tag_names]
            if rows:
                conn.execute(self._set_tags, rows)
            if operator is not None:
                outbox.record(conn, outbox.pushed(repo, manifest.digest, manifest.media_type, len(manifest.content),
                                                  [r["name"] for r in rows], operator, now))

    def _held(self, conn: sa.Connection, sql: str, repo_id: int, digests: Iterable[str]) -> set[str]:
        wanted = sorted(set(digests))
        held: set[str] = set()
        mark = "?" if self.store.is_sqlite else "%s"
        # Shared locks on PostgreSQL: garbage collection's deletion of a link waits for this push to commit.
        lock = "" if self.store.is_sqlite else " FOR SHARE"
        for start in range(0, len(wanted), _IN_BATCH):
            batch = wanted[start:start + _IN_BATCH]
            statement = sql.format(mark=mark, marks=", ".join([mark] * len(batch))) + lock
            held.update(d for d, in conn.exec_driver_sql(statement, (repo_id, *batch)))
        return held

    def delete_manifest(self, repo: str, digest: str, operator: str | None = None) -> bool:
        """Delete a manifest and every tag pointing at it (with an ``operator``, telling the outbox)."""
        with self.store.write() as conn:
            account = self.quotas.hold(conn, repo)
            if operator is not None:
                outbox.record(conn, outbox.artifact_deleted(conn, repo, digest, operator))
            named = sa.select(repositories.c.id).where(repositories.c.name == repo).scalar_subquery()
            self.quotas.release(conn, account, sa.and_(manifests.c.repository_id == named,
                                                       manifests.c.digest == digest))
            result = conn.execute(manifests.delete().where(
                manifests.c.repository_id == _repo_id, manifests.c.digest == digest), {"repo": repo})
            return result.rowcount > 0

    def delete_tag(self, repo: str, tag: str, operator: str | None = None) -> bool:
        with self.store.write() as conn:
            if operator is not None:
                outbox.record(conn, outbox.tag_deleted(conn, repo, tag, operator))
            result = conn.execute(tags.delete().where(tags.c.repository_id == _repo_id, tags.c.name == tag),
                                  {"repo": repo})
            return result.rowcount > 0

    def list_tags(self, repo: str, n: int | None, last: str | None) -> list[str] | None:
        """Tags in lexical order, or None when the repository does not exist."""
        found = self.store.fetch_one("SELECT id FROM repositories WHERE name = :repo", {"repo": repo})
        if found is None:
            return None
        sql = "SELECT name FROM tags WHERE repository_id = :repo_id" + (" AND name > :last" if last else "") \
            + " ORDER BY name" + (" LIMIT :n" if n is not None else "")
        return [name for name, in self.store.fetch_all(sql, {"repo_id": found[0], "last": last, "n": n})]

    def referrers(self, repo: str, subject: str, artifact_type: str | None) -> list[Referrer]:
        query = (sa.select(manifests.c.digest, manifests.c.media_type, manifests.c.artifact_type,
                           manifests.c.annotations, manifests.c.size)
                 .where(manifests.c.repository_id == _repo_id, manifests.c.subject == subject)
                 .order_by(manifests.c.created_at, manifests.c.digest))
        if artifact_type is not None:
            query = query.where(manifests.c.artifact_type == artifact_type)
        with self.store.read() as conn:
            return [Referrer(*row) for row in conn.execute(query, {"repo": repo})]

    # -- upload sessions ------------------------------------------------------------------------
    def create_upload(self, upload_id: str, repo: str, owner: str, max_per_repository: int | None = None,
                      max_per_owner: int | None = None) -> str | None:
        """Open a session for ``owner`` unless ``repo`` or ``owner`` already has the most open sessions
        allowed; returns which cap refused it ("repository" or "account"), or None when opened.

        The count and the insert share one write transaction, so concurrent starts cannot overshoot a
        cap: SQLite has one writer at a time, and on PostgreSQL the starts for one repository or one
        owner queue behind a transaction-scoped advisory lock (taken in one order, so never a deadlock).
        """
        now = time.time()
        with self.store.write() as conn:
            if not self.store.is_sqlite:
                keys = {_advisory_key(f"uploads/repository/{repo}"), _advisory_key(f"uploads/owner/{owner}")}
                for key in sorted(keys):
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            if self._at_cap(conn, self._open_in_repository, repo, max_per_repository):
                return "repository"
            if self._at_cap(conn, self._open_by_owner, owner, max_per_owner):
                return "account"
            conn.execute(self._add_upload, {"id": upload_id, "repository": repo, "owner": owner, "offset": 0,
                                            "created_at": now, "updated_at": now})
        return None

    @staticmethod
    def _at_cap(conn: sa.Connection, count: sa.Select[Any], key: str, cap: int | None) -> bool:
        return cap is not None and conn.execute(count, {"key": key, "cap": cap}).scalar_one() >= cap

    def get_upload(self, upload_id: str) -> Upload | None:
        row = self.store.fetch_one(_UPLOAD, {"id": upload_id})
        return Upload(*row) if row else None

    def advance_upload(self, upload_id: str, expected: int, offset: int, hash_state: bytes | None,
                       store_state: bytes | None = None) -> bool:
        """Move the acknowledged offset forward with the hash state (and the blob store's state) at it, only if
        nobody else moved it meanwhile."""
        with self.store.write() as conn:
            result = conn.execute(self._advance_upload, {"upload_id": upload_id, "expected": expected, "offset": offset,
                                                         "hash_state": hash_state, "store_state": store_state,
                                                         "updated_at": time.time()})
            return result.rowcount > 0

    def delete_upload(self, upload_id: str) -> bool:
        with self.store.write() as conn:
            return conn.execute(self._delete_upload, {"upload_id": upload_id}).rowcount > 0

    def stale_uploads(self, before: float) -> list[str]:
        """Sessions untouched since ``before``."""
        with self.store.read() as conn:
            return list(conn.execute(sa.select(uploads.c.id).where(uploads.c.updated_at < before)).scalars())

    def forget_stale_uploads(self, upload_ids: Iterable[str], before: float) -> list[str]:
        """Delete those of ``upload_ids`` still untouched since ``before`` (a chunk may have arrived since
        they were listed); returns the ids deleted, whose data can go too."""
        wanted = list(upload_ids)
        if not wanted:
            return []
        with self.store.write() as conn:
            return list(conn.execute(uploads.delete().where(uploads.c.id.in_(wanted), uploads.c.updated_at < before)
                                     .returning(uploads.c.id)).scalars())


# -- pull counts ----------------------------------------------------------------------------------------------
# Never written by a pull: the manifest GET is the registry's hottest path. Pulls reach the audit log in
# batches (``moorage.core.events``), and each batch adds its counts in the transaction that records it.

@dataclass
class PullTally:
    """The manifest GETs of one batch of events, summed per repository, per manifest and per tag."""

    repositories: dict[str, int] = field(default_factory=dict)
    #: (repository, digest) -> (GETs, time of the last)
    manifests: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    #: (repository, tag) -> time of the last GET by that tag
    tags: dict[tuple[str, str], float] = field(default_factory=dict)

    def add(self, repository: str, digest: str, tag: str | None, when: float) -> None:
        self.repositories[repository] = self.repositories.get(repository, 0) + 1
        count, last = self.manifests.get((repository, digest), (0, when))
        self.manifests[(repository, digest)] = (count + 1, max(last, when))
        if tag is not None:
            self.tags[(repository, tag)] = max(self.tags.get((repository, tag), when), when)

    def __bool__(self) -> bool:
        return bool(self.repositories)


_pulled_repo = sa.select(repositories.c.id).where(repositories.c.name == sa.bindparam("b_repo")) \
    .scalar_subquery()
_when = sa.bindparam("b_when", type_=sa.Float)


def _later(column: sa.Column[float]) -> sa.ColumnElement[float]:
    return sa.case((sa.or_(column.is_(None), column < _when), _when), else_=column)


_COUNT_REPOSITORY_PULLS = repositories.update().where(repositories.c.name == sa.bindparam("b_repo")) \
    .values(pull_count=repositories.c.pull_count + sa.bindparam("b_count", type_=sa.BigInteger))
_COUNT_MANIFEST_PULLS = manifests.update() \
    .where(manifests.c.repository_id == _pulled_repo, manifests.c.digest == sa.bindparam("b_digest")) \
    .values(pull_count=manifests.c.pull_count + sa.bindparam("b_count", type_=sa.BigInteger),
            pull_time=_later(manifests.c.pull_time))
_TIME_TAG_PULLS = tags.update().where(tags.c.repository_id == _pulled_repo, tags.c.name == sa.bindparam("b_tag")) \
    .values(pull_time=_later(tags.c.pull_time))


def count_pulls(conn: sa.Connection, tally: PullTally) -> None:
    """Add a batch's pulls in the caller's transaction. Rows are locked in one order, the push path's
    (repository, then manifest, then tag) and sorted within each, so two workers' batches and a push never
    wait on each other in a circle."""
    if not tally:
        return
    conn.execute(_COUNT_REPOSITORY_PULLS, [{"b_repo": repo, "b_count": count}
                                           for repo, count in sorted(tally.repositories.items())])
    conn.execute(_COUNT_MANIFEST_PULLS, [{"b_repo": repo, "b_digest": digest, "b_count": count, "b_when": when}
                                         for (repo, digest), (count, when) in sorted(tally.manifests.items())])
    if tally.tags:
        conn.execute(_TIME_TAG_PULLS, [{"b_repo": repo, "b_tag": tag, "b_when": when}
                                       for (repo, tag), when in sorted(tally.tags.items())])
