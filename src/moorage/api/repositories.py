"""Repositories, artifacts and tags of a project, read from the registry's own tables.

Repository names in paths are the part after the project; Harbor asks clients to encode a slash twice
(``a/b`` -> ``a%252Fb``), which arrives here as ``a%2Fb`` and is decoded once more.

Artifacts are listed as Harbor lists them: newest push first, an index with the ``references`` to the
manifests it lists, and those manifests, when untagged, not beside it (``q=base=*`` shows them too).
``q=tags=*`` keeps tagged artifacts, ``q=tags=nil`` untagged ones; ``q=tags=<name>`` (a moorage extension)
the one with that tag.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from moorage.api import artifacts
from moorage.api.base import BadRequest, Call, Conflict, NotFound, iso
from moorage.api.listing import Filter, listing, matches, page_of, parse_q, sort_views
from moorage.api.models.artifacts import Artifact, Repository, Tag
from moorage.api.operations import Created, Page, operation
from moorage.api.params import ListQuery, Params, page_offset
from moorage.api.projects import ProjectNamePath, can, project_by_name, record, visible_projects
from moorage.meta.projects import ArtifactRow, RepositoryRow

TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


class RepositoryPath(ProjectNamePath):
    #: The name after the project, its slashes encoded twice (``a%252Fb``).
    repository_name: str


class ArtifactPath(RepositoryPath):
    #: A tag or a digest.
    reference: str


class TagPath(ArtifactPath):
    tag_name: str


class ArtifactOptions(Params):
    with_tag: bool = True
    #: Accepted for Harbor's clients; moorage has no labels, scans, SBOMs or accessories (``immutable`` is always
    #: reported).
    with_label: bool = False
    with_scan_overview: bool = False
    with_sbom_overview: bool = False
    with_immutable_status: bool = False
    with_accessory: bool = False


class ArtifactListQuery(ListQuery, ArtifactOptions):
    pass


class TagListQuery(ListQuery):
    with_immutable_status: bool = False


def render_repository(repo: RepositoryRow, project_id: int) -> Repository:
    return Repository(id=repo.id, project_id=project_id, name=repo.name, description="",
                      artifact_count=repo.artifact_count, pull_count=repo.pull_count,
                      creation_time=iso(repo.created_at), update_time=iso(repo.updated_at))


def _repo_name(path: RepositoryPath) -> str:
    name = unquote(path.repository_name)
    if not name or name.startswith("/") or name.endswith("/"):
        raise BadRequest(f"invalid repository name {name!r}")
    return f"{path.project_name}/{name}"


async def _repository(call: Call, path: RepositoryPath, resource: str, action: str,
                      what: str) -> tuple[int, RepositoryRow]:
    project = await project_by_name(call, path.project_name, resource, action, what)
    name = _repo_name(path)
    repos = await call.query(call.auth.projects.repositories, project.name)
    found = next((r for r in repos if r.name == name), None)
    if found is None:
        raise NotFound(f"repository {name} not found")
    return project.id, found


async def _artifact(call: Call, path: ArtifactPath, resource: str, action: str, what: str) -> tuple[int, ArtifactRow]:
    project = await project_by_name(call, path.project_name, resource, action, what)
    repo = _repo_name(path)
    reference = path.reference
    if DIGEST.match(reference):
        digest: str | None = reference
    elif TAG.match(reference):
        digest = await call.query(call.auth.projects.digest_of_tag, repo, reference)
    else:
        raise BadRequest(f"invalid reference {reference!r}: a tag or a digest")
    found = await call.query(call.auth.projects.artifacts, repo, digest) if digest else None
    if not found:
        raise NotFound(f"artifact {repo}:{reference} not found" if digest is None or ":" not in reference
                       else f"artifact {repo}@{reference} not found")
    return project.id, found[0]


def _newest_first(repos: list[RepositoryRow]) -> list[RepositoryRow]:
    return sorted(repos, key=lambda r: (r.created_at, r.id), reverse=True)


@operation("GET", "/repositories", "List all repositories the caller may see", "repository", public=True)
async def listAllRepositories(call: Call, query: ListQuery) -> Page[Repository]:
    found: list[tuple[RepositoryRow, int]] = []
    for project in await visible_projects(call):
        if can(call, project, "repository", "list"):
            found += [(r, project.id) for r in await call.query(call.auth.projects.repositories, project.name)]
    found.sort(key=lambda pair: (pair[0].created_at, pair[0].id), reverse=True)
    return listing([render_repository(r, project_id) for r, project_id in found], query, q=query.q, sort=query.sort)


@operation("GET", "/projects/{project_name}/repositories", "List a project's repositories", "repository",
           public=True)
async def listRepositories(call: Call, path: ProjectNamePath, query: ListQuery) -> Page[Repository]:
    project = await project_by_name(call, path.project_name, "repository", "list", "list repositories")
    repos = _newest_first(await call.query(call.auth.projects.repositories, project.name))
    return listing([render_repository(r, project.id) for r in repos], query, q=query.q, sort=query.sort)


@operation("GET", "/projects/{project_name}/repositories/{repository_name:path}", "Get a repository",
           "repository", public=True)
async def getRepository(call: Call, path: RepositoryPath) -> Repository:
    project_id, repo = await _repository(call, path, "repository", "read", "read repositories")
    return render_repository(repo, project_id)


@operation("DELETE", "/projects/{project_name}/repositories/{repository_name:path}",
           "Delete a repository and everything in it", "repository")
async def deleteRepository(call: Call, path: RepositoryPath) -> None:
    _, repo = await _repository(call, path, "repository", "delete", "delete repositories")
    await call.services.immutability.check_repository_delete(repo.name)
    await call.run(call.auth.projects.delete_repository, repo.name)
    await record(call, repo.name, "repository", "delete", path.project_name)


def _view(row: ArtifactRow) -> dict[str, Any]:
    """What ``q`` and ``sort`` see of an artifact before it is rendered (only its page is)."""
    return {"id": row.id, "digest": row.digest, "media_type": row.media_type, "manifest_media_type": row.media_type,
            "artifact_type": row.artifact_type or "", "size": row.size, "push_time": iso(row.created_at),
            "pull_time": iso(row.pull_time), "repository_name": row.repository_name,
            "tags": [t.name for t in row.tags], "labels": []}


def _tagged_as(row: ArtifactRow, f: Filter) -> bool:
    if f.kind == "exact" and f.values[0] == "*":
        return bool(row.tags)
    if f.kind == "exact" and f.values[0] == "nil":
        return not row.tags
    return matches({"tags": [t.name for t in row.tags]}, f, {})


def _chosen(rows: list[ArtifactRow], q: str | None) -> list[ArtifactRow]:
    every = False
    for f in parse_q(q):
        if f.key == "base":
            if f.kind != "exact" or f.values[0] != "*":
                raise BadRequest('q=base can only be "*" (every artifact, untagged children of an index too)')
            every = True
        elif f.key.lower() == "tags":
            rows = [row for row in rows if _tagged_as(row, f)]
        else:
            rows = [row for row in rows if matches(_view(row), f, {})]
    # Harbor hides what an index lists unless it is tagged too: it is shown as the index's references.
    return rows if every else [row for row in rows if row.tags or not row.referenced]


@operation("GET", "/projects/{project_name}/repositories/{repository_name:path}/artifacts", "List artifacts",
           "artifact", public=True)
async def listArtifacts(call: Call, path: RepositoryPath, query: ArtifactListQuery) -> Page[Artifact]:
    project = await project_by_name(call, path.project_name, "artifact", "list", "list artifacts")
    repo = _repo_name(path)
    if not query.q and not query.sort:
        # Nothing filtered, Harbor's order: the database cuts the page (10,000 tags list as fast as 20).
        rows = await call.query(call.auth.projects.artifacts, repo,
                                page=(page_offset(query.page, query.page_size), query.page_size))
        if rows is None:
            raise NotFound(f"repository {repo} not found")
        total = await call.query(call.auth.projects.listed_count, repo)
        return Page(await artifacts.render(call, rows, project.id, query.with_tag), total)
    rows = await call.query(call.auth.projects.artifacts, repo)
    if rows is None:
        raise NotFound(f"repository {repo} not found")
    chosen = [row for _, row in sort_views([(_view(r), r) for r in _chosen(rows, query.q)], query.sort, {})]
    page = page_of(chosen, query)
    return Page(await artifacts.render(call, page.items, project.id, query.with_tag), page.total)


@operation("GET", "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}",
           "Get an artifact by tag or digest", "artifact", public=True)
async def getArtifact(call: Call, path: ArtifactPath, query: ArtifactOptions) -> Artifact:
    project_id, row = await _artifact(call, path, "artifact", "read", "read artifacts")
    return (await artifacts.render(call, [row], project_id, query.with_tag))[0]


@operation("DELETE", "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}",
           "Delete an artifact (and its tags)", "artifact")
async def deleteArtifact(call: Call, path: ArtifactPath) -> None:
    _, row = await _artifact(call, path, "artifact", "delete", "delete artifacts")
    await call.services.immutability.check_delete(row.repository_name, None, row.digest)
    await call.run(call.auth.projects.delete_artifact, row, call.subject.name)
    await record(call, f"{row.repository_name}@{row.digest}", "artifact", "delete", path.project_name)


@operation("GET", "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}/tags",
           "List an artifact's tags", "artifact", public=True)
async def listTags(call: Call, path: ArtifactPath, query: TagListQuery) -> Page[Tag]:
    _, row = await _artifact(call, path, "tag", "list", "list tags")
    held = await call.services.immutability.immutable_tags(row.repository_name, [t.name for t in row.tags])
    return listing([artifacts.render_tag(row, t, t.name in held) for t in row.tags], query, q=query.q,
                   sort=query.sort)


@operation("POST", "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}/tags",
           "Add a tag to an artifact", "artifact", errors=(409,))
async def createTag(call: Call, path: ArtifactPath, body: Tag) -> Created[None]:
    _, row = await _artifact(call, path, "tag", "create", "create tags")
    if not body.name or not TAG.match(body.name):
        raise BadRequest(f"invalid tag {body.name!r}: up to 128 of letters, digits, '_', '.', '-', not starting "
                         "with '.' or '-'")
    if not await call.run(call.auth.projects.add_tag, row, body.name):
        raise Conflict(f"tag {body.name} already exists in {row.repository_name}")
    await record(call, f"{row.repository_name}:{body.name}", "tag", "create", path.project_name)
    return Created(f"{call.request.url.path}/{body.name}")


@operation("DELETE",
           "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}/tags/{tag_name}",
           "Delete a tag", "artifact")
async def deleteTag(call: Call, path: TagPath) -> None:
    _, row = await _artifact(call, path, "tag", "delete", "delete tags")
    await call.services.immutability.check_delete(row.repository_name, path.tag_name, None)
    if not await call.run(call.auth.projects.delete_tag, row, path.tag_name, call.subject.name):
        raise NotFound(f"tag {path.tag_name} not found on artifact {row.digest}")
    await record(call, f"{row.repository_name}:{path.tag_name}", "tag", "delete", path.project_name)
