"""Repositories, artifacts and tags of a project, read from the registry's own tables.

Repository names in paths are the part after the project; Harbor asks clients to encode a slash twice
(``a/b`` -> ``a%252Fb``), which arrives here as ``a%2Fb`` and is decoded once more.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote

from starlette.responses import JSONResponse, Response

from moorage.api.base import PAGED, BadRequest, Call, Conflict, NotFound, created, iso, listing, ok, operation
from moorage.api.models import NewTag
from moorage.api.projects import can, project_by_name, visible_projects
from moorage.meta.projects import ArtifactRow, RepositoryRow

TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
REPO = [("project_name", "path", "string"), ("repository_name", "path", "string")]
ARTIFACT = [*REPO, ("reference", "path", "string")]


def render_repository(repo: RepositoryRow, project_id: int) -> dict[str, Any]:
    return {"id": repo.id, "project_id": project_id, "name": repo.name, "description": "",
            "artifact_count": repo.artifact_count, "pull_count": 0, "creation_time": iso(repo.created_at),
            "update_time": iso(repo.updated_at)}


def render_tag(artifact: ArtifactRow, name: str, pushed: float) -> dict[str, Any]:
    return {"id": 0, "repository_id": artifact.repository_id, "artifact_id": artifact.id, "name": name,
            "push_time": iso(pushed), "pull_time": iso(None), "immutable": False}


def render_artifact(artifact: ArtifactRow, project_id: int, with_tag: bool = True) -> dict[str, Any]:
    annotations = json.loads(artifact.annotations) if artifact.annotations else {}
    return {
        "id": artifact.id, "type": "IMAGE" if "image" in artifact.media_type or "manifest" in artifact.media_type
        else "UNKNOWN", "media_type": artifact.media_type, "manifest_media_type": artifact.media_type,
        "artifact_type": artifact.artifact_type or "", "project_id": project_id,
        "repository_id": artifact.repository_id, "repository_name": artifact.repository_name,
        "digest": artifact.digest, "size": artifact.size, "icon": "", "push_time": iso(artifact.created_at),
        "pull_time": iso(None), "extra_attrs": {}, "annotations": annotations, "references": [],
        "tags": [render_tag(artifact, n, t) for n, t in artifact.tags] if with_tag else None, "labels": None,
        "addition_links": {},
    }


def _repo_name(call: Call) -> str:
    name = unquote(call.params["repository_name"])
    if not name or name.startswith("/") or name.endswith("/"):
        raise BadRequest(f"invalid repository name {name!r}")
    return f"{call.params['project_name']}/{name}"


async def _repository(call: Call, resource: str, action: str, what: str) -> tuple[int, RepositoryRow]:
    project = await project_by_name(call, call.params["project_name"], resource, action, what)
    name = _repo_name(call)
    repos = await call.auth.store.query(call.auth.projects.repositories, project.name)
    found = next((r for r in repos if r.name == name), None)
    if found is None:
        raise NotFound(f"repository {name} not found")
    return project.id, found


async def _artifact(call: Call, resource: str, action: str, what: str) -> tuple[int, ArtifactRow]:
    project = await project_by_name(call, call.params["project_name"], resource, action, what)
    repo = _repo_name(call)
    reference = call.params["reference"]
    if DIGEST.match(reference):
        digest: str | None = reference
    elif TAG.match(reference):
        digest = await call.auth.store.query(call.auth.projects.digest_of_tag, repo, reference)
    else:
        raise BadRequest(f"invalid reference {reference!r}: a tag or a digest")
    found = await call.auth.store.query(call.auth.projects.artifacts, repo, digest) if digest else None
    if not found:
        raise NotFound(f"artifact {repo}:{reference} not found" if digest is None or ":" not in reference
                       else f"artifact {repo}@{reference} not found")
    return project.id, found[0]


async def _audit(call: Call, resource: str, operation_name: str) -> None:
    client = call.request.client.host if call.request.client else None
    await call.run(call.auth.audit.record, call.subject.name or "anonymous", resource, "artifact", operation_name,
                   resource.split("/", 1)[0], client)


@operation("GET", "/repositories", "List all repositories the caller may see", "repository",
           response="Repository[]", params=PAGED, public=True)
async def listAllRepositories(call: Call) -> Response:
    items = []
    for project in await visible_projects(call):
        if can(call, project, "repository", "list"):
            repos = await call.auth.store.query(call.auth.projects.repositories, project.name)
            items += [render_repository(r, project.id) for r in repos]
    return listing(call, items)


@operation("GET", "/projects/{project_name}/repositories", "List a project's repositories", "repository",
           response="Repository[]", params=[("project_name", "path", "string"), *PAGED], public=True)
async def listRepositories(call: Call) -> Response:
    project = await project_by_name(call, call.params["project_name"], "repository", "list", "list repositories")
    repos = await call.auth.store.query(call.auth.projects.repositories, project.name)
    return listing(call, [render_repository(r, project.id) for r in repos])


@operation("GET", "/projects/{project_name}/repositories/{repository_name:path}", "Get a repository",
           "repository", response="Repository", params=REPO, public=True)
async def getRepository(call: Call) -> Response:
    project_id, repo = await _repository(call, "repository", "read", "read repositories")
    return JSONResponse(render_repository(repo, project_id))


@operation("DELETE", "/projects/{project_name}/repositories/{repository_name:path}",
           "Delete a repository and everything in it", "repository", params=REPO)
async def deleteRepository(call: Call) -> Response:
    _, repo = await _repository(call, "repository", "delete", "delete repositories")
    await call.run(call.auth.projects.delete_repository, repo.name)
    await _audit(call, repo.name, "delete")
    return ok()


@operation("GET", "/projects/{project_name}/repositories/{repository_name:path}/artifacts", "List artifacts",
           "artifact", response="Artifact[]", params=[*REPO, *PAGED, ("with_tag", "query", "boolean")], public=True)
async def listArtifacts(call: Call) -> Response:
    project = await project_by_name(call, call.params["project_name"], "artifact", "list", "list artifacts")
    repo = _repo_name(call)
    artifacts = await call.auth.store.query(call.auth.projects.artifacts, repo)
    if artifacts is None:
        raise NotFound(f"repository {repo} not found")
    with_tag = (call.query("with_tag") or "true").lower() != "false"
    items = [render_artifact(a, project.id, with_tag) for a in artifacts]
    for item, artifact in zip(items, artifacts, strict=True):
        item["_tags"] = [n for n, _ in artifact.tags]
    return listing(call, items, {"tags": "_tags"},
                   render=lambda i: {k: v for k, v in i.items() if not k.startswith("_")})


@operation("GET", "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}",
           "Get an artifact by tag or digest", "artifact", response="Artifact", params=ARTIFACT, public=True)
async def getArtifact(call: Call) -> Response:
    project_id, artifact = await _artifact(call, "artifact", "read", "read artifacts")
    return JSONResponse(render_artifact(artifact, project_id))


@operation("DELETE", "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}",
           "Delete an artifact (and its tags)", "artifact", params=ARTIFACT)
async def deleteArtifact(call: Call) -> Response:
    _, artifact = await _artifact(call, "artifact", "delete", "delete artifacts")
    await call.run(call.auth.projects.delete_artifact, artifact)
    await _audit(call, f"{artifact.repository_name}@{artifact.digest}", "delete")
    return ok()


@operation("GET", "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}/tags",
           "List an artifact's tags", "artifact", response="Tag[]", params=[*ARTIFACT, *PAGED], public=True)
async def listTags(call: Call) -> Response:
    _, artifact = await _artifact(call, "tag", "list", "list tags")
    return listing(call, [render_tag(artifact, n, t) for n, t in artifact.tags])


@operation("POST", "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}/tags",
           "Add a tag to an artifact", "artifact", body=NewTag, status=201, params=ARTIFACT)
async def createTag(call: Call) -> Response:
    _, artifact = await _artifact(call, "tag", "create", "create tags")
    req = await call.body(NewTag)
    if not TAG.match(req.name):
        raise BadRequest(f"invalid tag {req.name!r}: up to 128 of letters, digits, '_', '.', '-', not starting "
                         "with '.' or '-'")
    if not await call.run(call.auth.projects.add_tag, artifact, req.name):
        raise Conflict(f"tag {req.name} already exists in {artifact.repository_name}")
    return created(f"{call.request.url.path}/{req.name}")


@operation("DELETE",
           "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}/tags/{tag_name}",
           "Delete a tag", "artifact", params=[*ARTIFACT, ("tag_name", "path", "string")])
async def deleteTag(call: Call) -> Response:
    _, artifact = await _artifact(call, "tag", "delete", "delete tags")
    tag = call.params["tag_name"]
    if not await call.run(call.auth.projects.delete_tag, artifact, tag):
        raise NotFound(f"tag {tag} not found on artifact {artifact.digest}")
    await _audit(call, f"{artifact.repository_name}:{tag}", "delete")
    return ok()
