"""The registry's model layer: every query the distribution API makes, each in one transaction.

Methods are blocking and short; the HTTP layer calls them through ``MetaStore.run``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from moorage.meta.schema import (
    blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
    uploads,
)
from moorage.meta.store import MetaStore


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


# The pull path's lookups, as plain SQL: they run thousands of times a second (see MetaStore.fetch_one).
_REPO_ID = "(SELECT id FROM repositories WHERE name = :repo)"
_MANIFEST_BY_TAG = ("SELECT m.digest, m.media_type, m.content FROM tags t JOIN manifests m ON m.id = t.manifest_id "
                    f"WHERE t.repository_id = {_REPO_ID} AND t.name = :tag")
_MANIFEST_BY_DIGEST = ("SELECT digest, media_type, content FROM manifests "
                       f"WHERE repository_id = {_REPO_ID} AND digest = :digest")
_BLOB_SIZE = ("SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest "
              f"WHERE rb.repository_id = {_REPO_ID} AND rb.digest = :digest")
_BLOBS_PRESENT = f"SELECT digest FROM repository_blobs WHERE repository_id = {_REPO_ID} AND digest IN ({{}})"
_MANIFESTS_PRESENT = f"SELECT digest FROM manifests WHERE repository_id = {_REPO_ID} AND digest IN ({{}})"
_IN_BATCH = 500
# Read twice by every chunk of a chunked push (before and under the session's lock).
_UPLOAD = 'SELECT id, repository, "offset", hash_state FROM uploads WHERE id = :id'

_repo_id = sa.select(repositories.c.id).where(repositories.c.name == sa.bindparam("repo")).scalar_subquery()


def _count_upto(column: sa.Column[str]) -> sa.Select[tuple[int]]:
    """How many upload sessions have ``column`` = :key, counting no further than :cap (all a cap needs)."""
    matching = sa.select(sa.literal(1).label("one")).where(column == sa.bindparam("key")) \
        .limit(sa.bindparam("cap", type_=sa.Integer)).subquery()
    return sa.select(sa.func.count()).select_from(matching)


def _advisory_key(name: str) -> int:
    """A PostgreSQL advisory-lock key (signed 64-bit) for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class RegistryModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store
        # The push path's statements, built once and given their values at execution: building a
        # statement costs SQLAlchemy more than running it, and a built one keeps its cache key.
        self._touch_repository = store.upsert(repositories, ["name"], ["updated_at"]).returning(repositories.c.id)
        self._add_blob = store.insert_ignore(blobs)
        self._link_blob = store.insert_ignore(repository_blobs)
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

    def link_blob(self, repo: str, digest: str, size: int) -> None:
        now = time.time()
        with self.store.write() as conn:
            repo_id = self._ensure_repository(conn, repo, now)
            conn.execute(self._add_blob, {"digest": digest, "size": size, "created_at": now})
            conn.execute(self._link_blob, {"repository_id": repo_id, "digest": digest, "created_at": now})

    def mount_blob(self, repo: str, source: str, digest: str) -> int | None:
        """Link a blob that ``source`` has into ``repo``; its size, or None when ``source`` lacks it."""
        size = self.blob_size(source, digest)
        if size is not None:
            self.link_blob(repo, digest, size)
        return size

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

    def missing_references(self, repo: str, blob_refs: Iterable[str],
                           manifest_refs: Iterable[str]) -> tuple[set[str], set[str]]:
        """Which of the given blobs and child manifests ``repo`` does not have (two hot reads of every
        manifest PUT, in plain SQL as the pull path's)."""
        want_blobs, want_manifests = set(blob_refs), set(manifest_refs)
        return (want_blobs - self._present(_BLOBS_PRESENT, repo, want_blobs),
                want_manifests - self._present(_MANIFESTS_PRESENT, repo, want_manifests))

    def _present(self, sql: str, repo: str, digests: set[str]) -> set[str]:
        present: set[str] = set()
        wanted = sorted(digests)
        # In batches: a 4 MiB index can list more digests than a statement may have parameters.
        for start in range(0, len(wanted), _IN_BATCH):
            params = {f"d{i}": d for i, d in enumerate(wanted[start:start + _IN_BATCH])}
            listed = ", ".join(f":{name}" for name in params)
            present.update(d for d, in self.store.fetch_all(sql.format(listed), {"repo": repo, **params}))
        return present

    def put_manifest(self, repo: str, manifest: NewManifest, tag_names: Iterable[str]) -> None:
        now = time.time()
        with self.store.write() as conn:
            repo_id = self._ensure_repository(conn, repo, now)
            conn.execute(self._add_manifest, {
                "repository_id": repo_id, "digest": manifest.digest, "media_type": manifest.media_type,
                "artifact_type": manifest.artifact_type, "subject": manifest.subject,
                "annotations": manifest.annotations, "size": len(manifest.content), "content": manifest.content,
                "created_at": now})
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

    def delete_manifest(self, repo: str, digest: str) -> bool:
        """Delete a manifest and every tag pointing at it."""
        with self.store.write() as conn:
            result = conn.execute(manifests.delete().where(
                manifests.c.repository_id == _repo_id, manifests.c.digest == digest), {"repo": repo})
            return result.rowcount > 0

    def delete_tag(self, repo: str, tag: str) -> bool:
        with self.store.write() as conn:
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
    def _at_cap(conn: sa.Connection, count: sa.Select[tuple[int]], key: str, cap: int | None) -> bool:
        return cap is not None and conn.execute(count, {"key": key, "cap": cap}).scalar_one() >= cap

    def get_upload(self, upload_id: str) -> Upload | None:
        row = self.store.fetch_one(_UPLOAD, {"id": upload_id})
        return Upload(*row) if row else None

    def advance_upload(self, upload_id: str, expected: int, offset: int, hash_state: bytes | None) -> bool:
        """Move the acknowledged offset forward with the hash state at it, only if nobody else moved it
        meanwhile."""
        with self.store.write() as conn:
            result = conn.execute(self._advance_upload, {"upload_id": upload_id, "expected": expected, "offset": offset,
                                                         "hash_state": hash_state, "updated_at": time.time()})
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
