"""Project model: projects, their members, and the registry content seen through a project.

A repository belongs to the project named by its first path segment (``project/repo[/more]``); the
registry's own tables carry no project column, so the link is made here, by name prefix.
"""

from __future__ import annotations

import builtins
import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from moorage.meta import outbox
from moorage.meta.changes import ACCOUNTS
from moorage.meta.quotas import UNLIMITED, QuotaModel
from moorage.meta.schema import (
    blobs,
    manifest_references,
    manifests,
    project_members,
    projects,
    repositories,
    tags,
    users,
)
from moorage.meta.store import MetaStore


@dataclass(frozen=True, slots=True)
class Project:
    id: int
    name: str
    owner_id: int
    owner_name: str
    public: bool
    metadata: dict[str, str]
    created_at: float
    updated_at: float
    #: Harbor's CVEAllowlist as stored: ``items`` (CVE ids), ``expires_at`` (epoch seconds or None) and the
    #: times it was set; None until one is.
    cve_allowlist: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    project_id: int
    user_id: int
    username: str
    role_id: int


@dataclass(frozen=True, slots=True)
class RepositoryRow:
    id: int
    name: str
    artifact_count: int
    created_at: float
    updated_at: float
    pull_count: int = 0


@dataclass(frozen=True, slots=True)
class TagRow:
    id: int
    name: str
    pushed_at: float
    pulled_at: float | None


@dataclass(slots=True)
class ArtifactRow:
    id: int
    repository_id: int
    repository_name: str
    digest: str
    media_type: str
    artifact_type: str | None
    annotations: str | None
    size: int
    created_at: float
    pull_count: int = 0
    pull_time: float | None = None
    tags: list[TagRow] = field(default_factory=list)
    #: Another manifest of the repository (an index) lists this one.
    referenced: bool = False


def _referenced(manifest: Any) -> sa.ColumnElement[bool]:
    """Whether another manifest of the same repository (an index) lists ``manifest``."""
    parent = manifests.alias("parent")
    return sa.exists().where(manifest_references.c.digest == manifest.c.digest,
                             manifest_references.c.kind == "manifest",
                             manifest_references.c.manifest_id == parent.c.id,
                             parent.c.repository_id == manifest.c.repository_id)


def _listed(manifest: Any) -> sa.ColumnElement[bool]:
    """What Harbor lists of a repository: tagged artifacts, and untagged ones no index lists."""
    tagged = sa.exists().where(tags.c.manifest_id == manifest.c.id)
    return sa.or_(tagged, sa.not_(_referenced(manifest)))


def _like_prefix(project: str) -> str:
    escaped = project.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}/%"


def _in_project(project: str) -> Any:
    return repositories.c.name.like(_like_prefix(project), escape="\\")


_PROJECT_COLUMNS = (projects.c.id, projects.c.name, projects.c.owner_id, users.c.username, projects.c.public,
                    projects.c.metadata_json, projects.c.created_at, projects.c.updated_at,
                    projects.c.cve_allowlist_json)


def _project(row: Any) -> Project:
    return Project(row[0], row[1], row[2], row[3] or "", bool(row[4]), json.loads(row[5]), row[6], row[7],
                   json.loads(row[8]) if row[8] else None)


def _allowlist_json(items: builtins.list[str], expires_at: int | None, created_at: float, now: float) -> str:
    return json.dumps({"items": items, "expires_at": expires_at, "created_at": created_at, "updated_at": now})


class ProjectModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store
        self.quotas = QuotaModel(store)

    def _select(self) -> Any:
        return sa.select(*_PROJECT_COLUMNS).select_from(projects.outerjoin(users, users.c.id == projects.c.owner_id))

    # -- projects -------------------------------------------------------------------------------
    def by_name(self, name: str) -> Project | None:
        with self.store.read() as conn:
            row = conn.execute(self._select().where(projects.c.name == name)).first()
        return _project(row) if row else None

    def by_id(self, project_id: int) -> Project | None:
        with self.store.read() as conn:
            row = conn.execute(self._select().where(projects.c.id == project_id)).first()
        return _project(row) if row else None

    def list(self) -> list[Project]:
        with self.store.read() as conn:
            return [_project(row) for row in conn.execute(self._select().order_by(projects.c.id))]

    def create(self, name: str, owner_id: int, public: bool, metadata: dict[str, str],
               cve_allowlist: tuple[builtins.list[str], int | None] | None = None,
               storage_limit: int = UNLIMITED) -> int | None:
        """``cve_allowlist`` is (CVE ids, expiry or None); ``storage_limit`` the quota in bytes (-1: none)."""
        now = time.time()
        allowlist = _allowlist_json(*cve_allowlist, now, now) if cve_allowlist is not None else None
        with self.store.write() as conn:
            project_id = self.store.insert_new(conn, projects, projects.c.id, name=name, owner_id=owner_id,
                                               public=public, metadata_json=json.dumps(metadata), created_at=now,
                                               updated_at=now, cve_allowlist_json=allowlist)
            if project_id is None:
                return None
            # The creator administers what they created, as in Harbor.
            conn.execute(project_members.insert().values(project_id=project_id, user_id=owner_id, role_id=1,
                                                          created_at=now, updated_at=now))
            self.quotas.open_account(conn, int(project_id), name, storage_limit, now)
            return int(project_id)

    def update(self, project: Project, public: bool, metadata: dict[str, str],
               cve_allowlist: tuple[builtins.list[str], int | None] | None = None) -> None:
        """Set the project's metadata, and its CVE allowlist when ``cve_allowlist`` is given."""
        now = time.time()
        values: dict[str, Any] = {"public": public, "metadata_json": json.dumps(metadata), "updated_at": now}
        if cve_allowlist is not None:
            created_at = project.cve_allowlist.get("created_at", now) if project.cve_allowlist else now
            values["cve_allowlist_json"] = _allowlist_json(*cve_allowlist, created_at, now)
        with self.store.write() as conn:
            conn.execute(projects.update().where(projects.c.id == project.id).values(**values))

    def delete_if_empty(self, project: Project) -> bool:
        """Delete the project unless it holds repositories (checked in the same transaction)."""
        with self.store.write() as conn:
            if conn.execute(sa.select(repositories.c.id).where(_in_project(project.name)).limit(1)).first():
                return False
            # Its robots go with it (ON DELETE CASCADE): their tokens must die everywhere at once.
            self.store.changes.announce(conn, ACCOUNTS)
            conn.execute(projects.delete().where(projects.c.id == project.id))
            return True

    def repo_counts(self) -> dict[str, int]:
        """project name -> number of repositories, for every project holding any."""
        first_segment = sa.func.substr(repositories.c.name, 1, sa.func.instr(repositories.c.name, "/") - 1) \
            if self.store.is_sqlite else sa.func.split_part(repositories.c.name, "/", 1)
        with self.store.read() as conn:
            rows = conn.execute(sa.select(first_segment, sa.func.count()).group_by(first_segment))
            return {row[0]: row[1] for row in rows}

    # -- members --------------------------------------------------------------------------------
    def members(self, project_id: int) -> builtins.list[Member]:
        query = (sa.select(project_members.c.id, project_members.c.project_id, project_members.c.user_id,
                           users.c.username, project_members.c.role_id)
                 .join(users, users.c.id == project_members.c.user_id)
                 .where(project_members.c.project_id == project_id).order_by(project_members.c.id))
        with self.store.read() as conn:
            return [Member(*row) for row in conn.execute(query)]

    def add_member(self, project_id: int, user_id: int, role_id: int) -> int | None:
        now = time.time()
        with self.store.write() as conn:
            return self.store.insert_new(
                conn, project_members, project_members.c.id, project_id=project_id, user_id=user_id,
                role_id=role_id, created_at=now, updated_at=now)

    def set_member_role(self, project_id: int, member_id: int, role_id: int) -> bool:
        with self.store.write() as conn:
            return conn.execute(project_members.update().where(
                project_members.c.id == member_id, project_members.c.project_id == project_id)
                .values(role_id=role_id, updated_at=time.time())).rowcount > 0

    def remove_member(self, project_id: int, member_id: int) -> bool:
        with self.store.write() as conn:
            return conn.execute(project_members.delete().where(
                project_members.c.id == member_id, project_members.c.project_id == project_id)).rowcount > 0

    # -- registry content through a project -----------------------------------------------------
    def repositories(self, project: str | None = None) -> builtins.list[RepositoryRow]:
        """Newest first, as Harbor lists them; counting the artifacts Harbor lists (not an index's untagged
        children)."""
        count = (sa.select(sa.func.count()).select_from(manifests)
                 .where(manifests.c.repository_id == repositories.c.id, _listed(manifests)).scalar_subquery())
        query = sa.select(repositories.c.id, repositories.c.name, count, repositories.c.created_at,
                          repositories.c.updated_at, repositories.c.pull_count) \
            .order_by(repositories.c.created_at.desc(), repositories.c.id.desc())
        if project is not None:
            query = query.where(_in_project(project))
        with self.store.read() as conn:
            return [RepositoryRow(*row) for row in conn.execute(query)]

    def delete_repository(self, name: str) -> bool:
        with self.store.write() as conn:
            named = sa.select(repositories.c.id).where(repositories.c.name == name).scalar_subquery()
            self.quotas.release(conn, self.quotas.hold(conn, name), manifests.c.repository_id == named)
            return conn.execute(repositories.delete().where(repositories.c.name == name)).rowcount > 0

    def artifacts(self, repository: str, digest: str | None = None,
                  page: tuple[int, int] | None = None) -> builtins.list[ArtifactRow] | None:
        """Artifacts (manifests) of a repository with tags and total size, newest push first (Harbor's order);
        None when the repository does not exist. ``page`` (offset, limit): only that page of what Harbor lists
        (``_listed``), cut by the database, so the first page of 10,000 costs what a page of 20 does."""
        blob_size = (sa.select(sa.func.coalesce(sa.func.sum(blobs.c.size), 0))
                     .select_from(manifest_references.join(blobs, blobs.c.digest == manifest_references.c.digest))
                     .where(manifest_references.c.manifest_id == manifests.c.id).scalar_subquery())
        with self.store.read() as conn:
            repo_id = conn.execute(sa.select(repositories.c.id).where(repositories.c.name == repository)).scalar()
            if repo_id is None:
                return None
            query = (sa.select(manifests.c.id, manifests.c.digest, manifests.c.media_type, manifests.c.artifact_type,
                               manifests.c.annotations, manifests.c.size + blob_size, manifests.c.created_at,
                               manifests.c.pull_count, manifests.c.pull_time, _referenced(manifests))
                     .where(manifests.c.repository_id == repo_id)
                     .order_by(manifests.c.created_at.desc(), manifests.c.id.desc()))
            if digest is not None:
                query = query.where(manifests.c.digest == digest)
            if page is not None:
                # The page's ids first, from cheap columns; the size and "referenced" subqueries of the select
                # list then run for that page alone, not for every artifact of the repository.
                ids = (sa.select(manifests.c.id).where(manifests.c.repository_id == repo_id, _listed(manifests))
                       .order_by(manifests.c.created_at.desc(), manifests.c.id.desc()).offset(page[0]).limit(page[1]))
                query = query.where(manifests.c.id.in_(ids.scalar_subquery()))
            rows = {row[0]: ArtifactRow(row[0], repo_id, repository, row[1], row[2], row[3], row[4], int(row[5]),
                                        row[6], int(row[7]), row[8], referenced=bool(row[9]))
                    for row in conn.execute(query)}
            if rows:
                for tag in conn.execute(sa.select(tags.c.manifest_id, tags.c.id, tags.c.name, tags.c.updated_at,
                                                  tags.c.pull_time)
                                        .where(tags.c.repository_id == repo_id,
                                               tags.c.manifest_id.in_(list(rows)))
                                        .order_by(tags.c.name)):
                    rows[tag.manifest_id].tags.append(TagRow(tag.id, tag.name, tag.updated_at, tag.pull_time))
            return list(rows.values())

    def listed_count(self, repository: str) -> int:
        """How many artifacts Harbor lists in a repository (``_listed``): the total beside a page of them."""
        query = (sa.select(sa.func.count()).select_from(manifests.join(repositories,
                                                                       repositories.c.id == manifests.c.repository_id))
                 .where(repositories.c.name == repository, _listed(manifests)))
        with self.store.read() as conn:
            return int(conn.execute(query).scalar() or 0)

    def manifest_contents(self, manifest_ids: builtins.list[int]) -> dict[int, bytes]:
        """The stored bytes of these manifests (for what only their JSON says: platforms, the config blob)."""
        if not manifest_ids:
            return {}
        with self.store.read() as conn:
            return {row[0]: bytes(row[1]) for row in conn.execute(
                sa.select(manifests.c.id, manifests.c.content).where(manifests.c.id.in_(manifest_ids)))}

    def manifest_ids(self, repository_id: int, digests: builtins.list[str]) -> dict[str, int]:
        """digest -> id of those of ``digests`` the repository holds."""
        if not digests:
            return {}
        with self.store.read() as conn:
            return {row[0]: row[1] for row in conn.execute(
                sa.select(manifests.c.digest, manifests.c.id).where(manifests.c.repository_id == repository_id,
                                                                   manifests.c.digest.in_(digests)))}

    def digest_of_tag(self, repository: str, tag: str) -> str | None:
        query = (sa.select(manifests.c.digest).join(tags, tags.c.manifest_id == manifests.c.id)
                 .join(repositories, repositories.c.id == tags.c.repository_id)
                 .where(repositories.c.name == repository, tags.c.name == tag))
        with self.store.read() as conn:
            return conn.execute(query).scalar()

    def add_tag(self, artifact: ArtifactRow, tag: str) -> bool:
        """Tag an artifact; False when the repository already has that tag."""
        with self.store.write() as conn:
            return self.store.insert_new(conn, tags, tags.c.id, repository_id=artifact.repository_id, name=tag,
                                         manifest_id=artifact.id, updated_at=time.time()) is not None

    def delete_tag(self, artifact: ArtifactRow, tag: str, operator: str | None = None) -> bool:
        with self.store.write() as conn:
            if operator is not None:
                outbox.record(conn, outbox.tag_deleted(conn, artifact.repository_name, tag, operator))
            return conn.execute(tags.delete().where(tags.c.repository_id == artifact.repository_id,
                                                    tags.c.manifest_id == artifact.id,
                                                    tags.c.name == tag)).rowcount > 0

    def delete_artifact(self, artifact: ArtifactRow, operator: str | None = None) -> bool:
        with self.store.write() as conn:
            self.quotas.release(conn, self.quotas.hold(conn, artifact.repository_name), manifests.c.id == artifact.id)
            if operator is not None:
                outbox.record(conn, outbox.artifact_deleted(conn, artifact.repository_name, artifact.digest, operator))
            return conn.execute(manifests.delete().where(manifests.c.id == artifact.id)).rowcount > 0

    def storage_bytes(self) -> int:
        with self.store.read() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(blobs.c.size), 0))).scalar_one())
