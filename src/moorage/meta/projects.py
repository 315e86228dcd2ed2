"""Project model: projects, their members, and the registry content seen through a project.

A repository belongs to the project named by its first path segment (``project/repo[/more]``); the
registry's own tables carry no project column, so the link is made here, by name prefix.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

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
    tags: list[tuple[str, float]] = field(default_factory=list)


def _like_prefix(project: str) -> str:
    escaped = project.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}/%"


def _in_project(project: str) -> Any:
    return repositories.c.name.like(_like_prefix(project), escape="\\")


_PROJECT_COLUMNS = (projects.c.id, projects.c.name, projects.c.owner_id, users.c.username, projects.c.public,
                    projects.c.metadata_json, projects.c.created_at, projects.c.updated_at)


def _project(row: Any) -> Project:
    return Project(row[0], row[1], row[2], row[3] or "", bool(row[4]), json.loads(row[5]), row[6], row[7])


class ProjectModel:
    def __init__(self, store: MetaStore) -> None:
        self.store = store

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

    def create(self, name: str, owner_id: int, public: bool, metadata: dict[str, str]) -> int | None:
        now = time.time()
        with self.store.write() as conn:
            project_id = self.store.insert_new(conn, projects, projects.c.id, name=name, owner_id=owner_id,
                                               public=public, metadata_json=json.dumps(metadata), created_at=now,
                                               updated_at=now)
            if project_id is None:
                return None
            # The creator administers what they created, as in Harbor.
            conn.execute(project_members.insert().values(project_id=project_id, user_id=owner_id, role_id=1,
                                                          created_at=now, updated_at=now))
            return int(project_id)

    def update(self, project_id: int, public: bool, metadata: dict[str, str]) -> None:
        with self.store.write() as conn:
            conn.execute(projects.update().where(projects.c.id == project_id).values(
                public=public, metadata_json=json.dumps(metadata), updated_at=time.time()))

    def delete_if_empty(self, project: Project) -> bool:
        """Delete the project unless it holds repositories (checked in the same transaction)."""
        with self.store.write() as conn:
            if conn.execute(sa.select(repositories.c.id).where(_in_project(project.name)).limit(1)).first():
                return False
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
    def members(self, project_id: int) -> list[Member]:
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
    def repositories(self, project: str | None = None) -> list[RepositoryRow]:
        count = (sa.select(sa.func.count()).select_from(manifests)
                 .where(manifests.c.repository_id == repositories.c.id).scalar_subquery())
        query = sa.select(repositories.c.id, repositories.c.name, count, repositories.c.created_at,
                          repositories.c.updated_at).order_by(repositories.c.name)
        if project is not None:
            query = query.where(_in_project(project))
        with self.store.read() as conn:
            return [RepositoryRow(*row) for row in conn.execute(query)]

    def delete_repository(self, name: str) -> bool:
        with self.store.write() as conn:
            return conn.execute(repositories.delete().where(repositories.c.name == name)).rowcount > 0

    def artifacts(self, repository: str, digest: str | None = None) -> list[ArtifactRow] | None:
        """Artifacts (manifests) of a repository with tags and total size; None when it does not exist."""
        blob_size = (sa.select(sa.func.coalesce(sa.func.sum(blobs.c.size), 0))
                     .select_from(manifest_references.join(blobs, blobs.c.digest == manifest_references.c.digest))
                     .where(manifest_references.c.manifest_id == manifests.c.id).scalar_subquery())
        with self.store.read() as conn:
            repo_id = conn.execute(sa.select(repositories.c.id).where(repositories.c.name == repository)).scalar()
            if repo_id is None:
                return None
            query = (sa.select(manifests.c.id, manifests.c.digest, manifests.c.media_type, manifests.c.artifact_type,
                               manifests.c.annotations, manifests.c.size + blob_size, manifests.c.created_at)
                     .where(manifests.c.repository_id == repo_id).order_by(manifests.c.created_at.desc()))
            if digest is not None:
                query = query.where(manifests.c.digest == digest)
            rows = {row[0]: ArtifactRow(row[0], repo_id, repository, row[1], row[2], row[3], row[4], int(row[5]),
                                        row[6]) for row in conn.execute(query)}
            if rows:
                for tag in conn.execute(sa.select(tags.c.manifest_id, tags.c.name, tags.c.updated_at)
                                        .where(tags.c.repository_id == repo_id,
                                               tags.c.manifest_id.in_(list(rows)))
                                        .order_by(tags.c.name)):
                    rows[tag.manifest_id].tags.append((tag.name, tag.updated_at))
            return list(rows.values())

    def digest_of_tag(self, repository: str, tag: str) -> str | None:
        query = (sa.select(manifests.c.digest).join(tags, tags.c.manifest_id == manifests.c.id)
                 .join(repositories, repositories.c.id == tags.c.repository_id)
                 .where(repositories.c.name == repository, tags.c.name == tag))
        with self.store.read() as conn:
            return conn.execute(query).scalar()

    def add_tag(self, artifact: ArtifactRow, tag: str) -> bool:
        """Tag an artifact; False when the repository already has that tag."""
        with self.store.write() as conn:
            return self.store.insert_new(conn, tags, tags.c.name, repository_id=artifact.repository_id, name=tag,
                                         manifest_id=artifact.id, updated_at=time.time()) is not None

    def delete_tag(self, artifact: ArtifactRow, tag: str) -> bool:
        with self.store.write() as conn:
            return conn.execute(tags.delete().where(tags.c.repository_id == artifact.repository_id,
                                                    tags.c.manifest_id == artifact.id,
                                                    tags.c.name == tag)).rowcount > 0

    def delete_artifact(self, artifact: ArtifactRow) -> bool:
        with self.store.write() as conn:
            return conn.execute(manifests.delete().where(manifests.c.id == artifact.id)).rowcount > 0

    def storage_bytes(self) -> int:
        with self.store.read() as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.sum(blobs.c.size), 0))).scalar_one())
