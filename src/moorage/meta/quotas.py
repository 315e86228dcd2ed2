"""Project quotas as stored: each project's limit and usage, and the ledger that keeps the usage exact.

A project's usage is the total size of the distinct content its repositories hold through manifests: every
manifest (its bytes are content too, as Harbor counts them) and every blob a manifest references, each digest
once however many manifests, tags or repositories of the project share it. A blob that is only uploaded or
mounted (leased, no manifest yet) is not counted: a push that fails or is abandoned consumes nothing.

``project_blobs`` holds each counted digest with the number of references that hold it; the usage in
``project_quotas`` moves only when a digest's count reaches or leaves 0, in the same transaction that adds or
removes the manifest. Every such transaction takes the project's quota row first (``hold``): on PostgreSQL
that row lock puts a project's reference changes one after another (SQLite's writers already are), so a
limit check and the change it admits cannot be split by another push, and no two transactions take the
project's rows in different orders.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from moorage.meta.schema import (
    blobs,
    manifest_references,
    manifests,
    project_blobs,
    project_quotas,
    projects,
    repositories,
    users,
)
from moorage.meta.store import MetaStore

#: A hard limit of -1 is no limit, as in Harbor.
UNLIMITED = -1
_IN_BATCH = 500


def project_of(repository: str) -> str | None:
    """The project a repository belongs to: the first segment of its name (None for a one-segment name)."""
    head, slash, _ = repository.partition("/")
    return head if slash else None


@dataclass(frozen=True, slots=True)
class Account:
    """A project's quota row as a write transaction holds it."""

    project_id: int
    project: str
    hard: int
    used: int


@dataclass(frozen=True, slots=True)
class Quota:
    id: int
    project_id: int
    project: str
    owner_name: str
    hard: int
    used: int
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Drift:
    """A project whose recorded usage (or reference counts) differ from what its references add up to."""

    project_id: int
    project: str
    recorded: int
    actual: int
    #: Digests whose recorded count or size is wrong, missing or superfluous.
    digests: int


class OverQuota(Exception):
    """Admitting the content would take the project past its limit; nothing was written."""

    def __init__(self, project: str, adding: int, used: int, hard: int) -> None:
        super().__init__(f"{project}: adding {adding} bytes to {used} used would exceed {hard}")
        self.project = project
        self.adding = adding
        self.used = used
        self.hard = hard


# -- what a project's references add up to (migration 0008 says the same in SQL of its own) -----------------
def _content(project_id: int, in_project: sa.ColumnElement[bool]) -> sa.Subquery:
    """(digest, size) of every reference a project's usage counts, once per reference. A referenced blob whose
    record is gone (``fsck --repair`` quarantined it; a push brings it back) stays counted at its recorded size."""
    own = sa.select(manifests.c.digest.label("digest"), manifests.c.size.label("size")) \
        .select_from(manifests.join(repositories, repositories.c.id == manifests.c.repository_id)).where(in_project)
    recorded = sa.and_(project_blobs.c.project_id == project_id,
                       project_blobs.c.digest == manifest_references.c.digest)
    referenced = sa.select(manifest_references.c.digest, sa.func.coalesce(blobs.c.size, project_blobs.c.size, 0)) \
        .select_from(manifest_references.join(manifests, manifests.c.id == manifest_references.c.manifest_id)
                     .join(repositories, repositories.c.id == manifests.c.repository_id)
                     .outerjoin(blobs, blobs.c.digest == manifest_references.c.digest)
                     .outerjoin(project_blobs, recorded)) \
        .where(in_project, manifest_references.c.kind == "blob")
    return sa.union_all(own, referenced).subquery("content")


def _in_project(name: str) -> sa.ColumnElement[bool]:
    # substr, not LIKE: project names may hold "_", LIKE's any-character.
    return sa.func.substr(repositories.c.name, 1, len(name) + 1) == name + "/"


class QuotaModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store
        # The push path's statements as plain driver SQL: SQLAlchemy's statement handling would cost a manifest PUT
        # more than the statements themselves (``mark`` is the driver's placeholder).
        mark = "?" if store.is_sqlite else "%s"
        self._mark = mark
        self._hold = ("SELECT q.project_id, q.hard, q.used FROM project_quotas q "
                      f"JOIN projects p ON p.id = q.project_id WHERE p.name = {mark}"
                      + ("" if store.is_sqlite else " FOR UPDATE OF q"))
        self._add_refs = ("INSERT INTO project_blobs (project_id, digest, size, refs) "
                          f"VALUES ({mark}, {mark}, {mark}, {mark}) ON CONFLICT (project_id, digest) "
                          "DO UPDATE SET refs = project_blobs.refs + excluded.refs")
        self._add_usage = (f"UPDATE project_quotas SET used = used + {mark}, updated_at = {mark} "
                           f"WHERE project_id = {mark}")
        self._drop_refs = project_blobs.update().where(
            project_blobs.c.project_id == sa.bindparam("b_project"), project_blobs.c.digest == sa.bindparam("b_digest")
        ).values(refs=project_blobs.c.refs - sa.bindparam("b_n", type_=sa.Integer))
        self._forget = project_blobs.delete().where(project_blobs.c.project_id == sa.bindparam("b_project"),
                                                    project_blobs.c.digest == sa.bindparam("b_digest"))

    # -- inside the transactions that change references ----------------------------------------------------
    def hold(self, conn: sa.Connection, repository: str) -> Account | None:
        """The quota of ``repository``'s project, locked for the rest of the transaction; None when the repository
        belongs to no project (nothing is counted for it). Call it before touching the project's manifests."""
        project = project_of(repository)
        return self.hold_project(conn, project) if project is not None else None

    def hold_project(self, conn: sa.Connection, project: str) -> Account | None:
        row = conn.exec_driver_sql(self._hold, (project,)).first()
        return Account(row[0], project, int(row[1]), int(row[2])) if row else None

    def charge(self, conn: sa.Connection, account: Account, manifest_digest: str, manifest_size: int,
               blob_refs: tuple[str, ...] | list[str]) -> int:
        """Count a new manifest of ``account``'s project and the blobs it references; returns the bytes the
        project's usage grew by. ``OverQuota`` (and nothing written) when that would pass the limit."""
        refs = Counter(dict.fromkeys(blob_refs, 1))
        refs[manifest_digest] += 1
        wanted = sorted(refs)
        blob_digests = sorted(set(blob_refs) - {manifest_digest})
        mark = self._mark
        counted: set[str] = set()
        sizes: dict[str, int] = {}
        # Per batch, one statement: which digests the project counts already, and the size of each blob.
        for batch in _batches(wanted):
            statement = (f"SELECT digest, 0, 1 FROM project_blobs WHERE project_id = {mark} AND digest IN "
                         f"({', '.join([mark] * len(batch))})")
            blob_batch = [d for d in batch if d != manifest_digest]
            if blob_batch:
                statement += (f" UNION ALL SELECT digest, size, 0 FROM blobs WHERE digest IN "
                              f"({', '.join([mark] * len(blob_batch))})")
            for digest, size, is_counted in conn.exec_driver_sql(statement, (account.project_id, *batch,
                                                                             *blob_batch)):
                if is_counted:
                    counted.add(digest)
                else:
                    sizes[digest] = int(size)
        adding = sum(sizes.get(d, 0) for d in blob_digests if d not in counted)
        if manifest_digest not in counted:
            sizes[manifest_digest] = manifest_size
            adding += manifest_size
        if account.hard != UNLIMITED and account.used + adding > account.hard:
            raise OverQuota(account.project, adding, account.used, account.hard)
        conn.exec_driver_sql(self._add_refs, [(account.project_id, d, sizes.get(d, 0), refs[d]) for d in wanted])
        if adding:
            conn.exec_driver_sql(self._add_usage, (adding, time.time(), account.project_id))
        return adding

    def release(self, conn: sa.Connection, account: Account | None, which: sa.ColumnElement[bool]) -> int:
        """Uncount the manifests ``which`` selects (a condition on ``manifests``), about to be deleted in this
        transaction, with the blobs they reference; returns the bytes the project's usage dropped by."""
        if account is None:
            return 0
        own = sa.select(manifests.c.digest.label("digest")).where(which)
        referenced = sa.select(manifest_references.c.digest) \
            .join(manifests, manifests.c.id == manifest_references.c.manifest_id) \
            .where(which, manifest_references.c.kind == "blob")
        gone = sa.union_all(own, referenced).subquery("gone")
        grouped = sa.select(gone.c.digest, sa.func.count().label("n")).group_by(gone.c.digest).subquery("grouped")
        rows = conn.execute(sa.select(project_blobs.c.digest, project_blobs.c.size, project_blobs.c.refs, grouped.c.n)
                            .join(grouped, grouped.c.digest == project_blobs.c.digest)
                            .where(project_blobs.c.project_id == account.project_id)
                            .order_by(project_blobs.c.digest)).all()
        freed = 0
        drop, forget = [], []
        for digest, size, count, n in rows:
            key = {"b_project": account.project_id, "b_digest": digest}
            if count - n <= 0:
                forget.append(key)
                freed += int(size)
            else:
                drop.append({**key, "b_n": int(n)})
        if drop:
            conn.execute(self._drop_refs, drop)
        if forget:
            conn.execute(self._forget, forget)
        if freed:
            conn.exec_driver_sql(self._add_usage, (-freed, time.time(), account.project_id))
        return freed

    def open_account(self, conn: sa.Connection, project_id: int, project: str, hard: int, now: float) -> None:
        """Give a new project its quota, counting what its repositories already hold (pushed before the project
        existed, with authentication off)."""
        conn.execute(project_quotas.insert().values(project_id=project_id, hard=hard, used=0, created_at=now,
                                                    updated_at=now))
        self._rebuild(conn, project_id, project, now)

    # -- on their own ----------------------------------------------------------------------------------------
    def admission(self, project: str, digest: str) -> tuple[int, int, bool] | None:
        """(hard limit, usage, whether ``digest`` is counted already) of ``project``; None without a quota."""
        row = self.store.fetch_one(
            "SELECT q.hard, q.used, EXISTS (SELECT 1 FROM project_blobs pb WHERE pb.project_id = q.project_id "
            "AND pb.digest = :digest) FROM project_quotas q JOIN projects p ON p.id = q.project_id "
            "WHERE p.name = :project", {"project": project, "digest": digest})
        return (int(row[0]), int(row[1]), bool(row[2])) if row else None

    def blob_size(self, repository: str, digest: str) -> int | None:
        """The size of a blob ``repository`` holds (a mount's source), or None."""
        row = self.store.fetch_one(
            "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest "
            "WHERE rb.repository_id = (SELECT id FROM repositories WHERE name = :repo) AND rb.digest = :digest",
            {"repo": repository, "digest": digest})
        return int(row[0]) if row else None

    def _select(self) -> sa.Select[Any]:
        return (sa.select(project_quotas.c.id, project_quotas.c.project_id, projects.c.name,
                          sa.func.coalesce(users.c.username, ""), project_quotas.c.hard, project_quotas.c.used,
                          project_quotas.c.created_at, project_quotas.c.updated_at)
                .join(projects, projects.c.id == project_quotas.c.project_id)
                .outerjoin(users, users.c.id == projects.c.owner_id))

    def all(self, project_id: int | None = None) -> list[Quota]:
        query = self._select().order_by(project_quotas.c.id)
        if project_id is not None:
            query = query.where(project_quotas.c.project_id == project_id)
        with self.store.read() as conn:
            return [_quota(row) for row in conn.execute(query)]

    def get(self, quota_id: int) -> Quota | None:
        with self.store.read() as conn:
            row = conn.execute(self._select().where(project_quotas.c.id == quota_id)).first()
        return _quota(row) if row else None

    def of_project(self, project_id: int) -> Quota | None:
        found = self.all(project_id)
        return found[0] if found else None

    def set_hard(self, quota_id: int, hard: int) -> bool:
        with self.store.write() as conn:
            return conn.execute(project_quotas.update().where(project_quotas.c.id == quota_id)
                                .values(hard=hard, updated_at=time.time())).rowcount > 0

    def set_project_hard(self, project_id: int, hard: int) -> None:
        with self.store.write() as conn:
            conn.execute(project_quotas.update().where(project_quotas.c.project_id == project_id)
                         .values(hard=hard, updated_at=time.time()))

    # -- the check ---------------------------------------------------------------------------------------------
    def drift(self, repair: bool = False) -> list[Drift]:
        """Every project whose recorded usage or counts differ from its references; with ``repair``, each is
        rewritten from its references (under its quota's lock, so pushes meanwhile are counted right)."""
        found: list[Drift] = []
        with self.store.snapshot() as conn:
            quotas = conn.execute(sa.select(project_quotas.c.project_id, projects.c.name)
                                  .join(projects, projects.c.id == project_quotas.c.project_id)
                                  .order_by(project_quotas.c.project_id)).all()
            for project_id, name in quotas:
                drift = self._compare(conn, project_id, name)
                if drift is not None:
                    found.append(drift)
        if repair:
            for drift in found:
                with self.store.write() as conn:
                    if self.hold_project(conn, drift.project) is not None:
                        self._rebuild(conn, drift.project_id, drift.project, time.time())
        return found

    def _compare(self, conn: sa.Connection, project_id: int, name: str) -> Drift | None:
        actual = self._actual(conn, project_id, name)
        recorded = {d: (int(s), int(n)) for d, s, n in conn.execute(
            sa.select(project_blobs.c.digest, project_blobs.c.size, project_blobs.c.refs)
            .where(project_blobs.c.project_id == project_id))}
        used = int(conn.execute(sa.select(project_quotas.c.used)
                                .where(project_quotas.c.project_id == project_id)).scalar_one())
        total = sum(size for size, _ in actual.values())
        wrong = sum(1 for d in actual.keys() | recorded.keys() if actual.get(d) != recorded.get(d))
        if used == total and not wrong:
            return None
        return Drift(project_id, name, used, total, wrong)

    def _actual(self, conn: sa.Connection, project_id: int, name: str) -> dict[str, tuple[int, int]]:
        content = _content(project_id, _in_project(name))
        return {d: (int(s), int(n)) for d, s, n in conn.execute(
            sa.select(content.c.digest, sa.func.max(content.c.size), sa.func.count()).group_by(content.c.digest))}

    def _rebuild(self, conn: sa.Connection, project_id: int, name: str, now: float) -> None:
        actual = self._actual(conn, project_id, name)
        conn.execute(project_blobs.delete().where(project_blobs.c.project_id == project_id))
        if actual:
            conn.execute(project_blobs.insert(), [{"project_id": project_id, "digest": d, "size": s, "refs": n}
                                                  for d, (s, n) in sorted(actual.items())])
        conn.execute(project_quotas.update().where(project_quotas.c.project_id == project_id)
                     .values(used=sum(s for s, _ in actual.values()), updated_at=now))


def _quota(row: Any) -> Quota:
    return Quota(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]), row[6], row[7])


def _batches(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), _IN_BATCH):
        yield items[start:start + _IN_BATCH]
