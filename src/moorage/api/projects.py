"""``/projects``: list, create, exists-by-name, get, update, delete, summary, deletable."""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import JSONResponse, Response

from moorage.api.base import (
    PAGED,
    BadRequest,
    Call,
    Conflict,
    NotFound,
    PreconditionFailed,
    created,
    iso,
    listing,
    ok,
    operation,
)
from moorage.api.models import ProjectReq
from moorage.auth import rbac
from moorage.meta.projects import Project

PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
NAME_OR_ID = [("project_name_or_id", "path", "string"), ("X-Is-Resource-Name", "header", "boolean")]


def ref(project: Project) -> rbac.ProjectRef:
    return rbac.ProjectRef(project.id, project.name, project.public)


def can(call: Call, project: Project, resource: str, action: str) -> bool:
    return rbac.allowed(call.subject, ref(project), resource, action)


async def project_by_name(call: Call, name: str, resource: str = "project", action: str = "read",
                          what: str = "read the project") -> Project:
    """The named project, if the caller may ``action`` on its ``resource``; 404 / 401 / 403 otherwise."""
    project = await call.auth.store.query(call.auth.projects.by_name, name)
    return _visible(call, project, name, resource, action, what)


async def project_by_name_or_id(call: Call, resource: str = "project", action: str = "read",
                                what: str = "read the project") -> Project:
    value = call.params["project_name_or_id"]
    as_name = call.request.headers.get("x-is-resource-name", "").lower() == "true"
    if not as_name and value.isdigit():
        project = await call.auth.store.query(call.auth.projects.by_id, int(value))
    else:
        project = await call.auth.store.query(call.auth.projects.by_name, value)
    return _visible(call, project, value, resource, action, what)


def _visible(call: Call, project: Project | None, label: str, resource: str, action: str, what: str) -> Project:
    if project is None:
        raise NotFound(f"project {label} not found")
    if not can(call, project, "project", "read"):
        # Callers who may not even read the project learn nothing more than that.
        call.require(False, f"access project {project.name}")
    call.require(can(call, project, resource, action), f"{what} in project {project.name}")
    return project


def metadata_of(project: Project) -> dict[str, str]:
    return {**project.metadata, "public": "true" if project.public else "false"}


def render(project: Project, subject: rbac.Subject, repo_count: int) -> dict[str, Any]:
    role = subject.roles.get(project.id) if subject.kind == "user" else None
    return {
        "project_id": project.id, "owner_id": project.owner_id, "name": project.name, "registry_id": 0,
        "creation_time": iso(project.created_at), "update_time": iso(project.updated_at), "deleted": False,
        "owner_name": project.owner_name, "togglable": True, "current_user_role_id": role or 0,
        "current_user_role_ids": [role] if role else [], "repo_count": repo_count,
        "metadata": metadata_of(project),
        "cve_allowlist": {"id": 0, "project_id": project.id, "items": [], "expires_at": None,
                          "creation_time": iso(project.created_at), "update_time": iso(project.updated_at)},
    }


def _metadata(req: ProjectReq, current: dict[str, str] | None = None) -> tuple[bool, dict[str, str]]:
    metadata = dict(current or {})
    for key, value in (req.metadata or {}).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int):
            raise BadRequest(f"metadata.{key} must be a string")
        metadata[key] = str(value)
    if req.public is not None and (req.metadata or {}).get("public") is None:
        metadata["public"] = "true" if req.public else "false"
    public = metadata.setdefault("public", "false").lower()
    if public not in ("true", "false"):
        raise BadRequest(f"metadata.public must be \"true\" or \"false\", not {metadata['public']!r}")
    metadata["public"] = public
    severity = metadata.get("severity")
    if severity is not None and severity not in ("none", "low", "medium", "high", "critical"):
        raise BadRequest("metadata.severity must be none, low, medium, high or critical")
    return public == "true", metadata


async def visible_projects(call: Call) -> list[Project]:
    projects = await call.auth.store.query(call.auth.projects.list)
    return [p for p in projects if can(call, p, "project", "read")]


@operation("GET", "/projects", "List projects", "project", response="Project[]",
           params=[*PAGED, ("name", "query", "string"), ("public", "query", "boolean"), ("owner", "query", "string"),
                   ("with_detail", "query", "boolean")], public=True)
async def listProjects(call: Call) -> Response:
    counts = await call.auth.store.query(call.auth.projects.repo_counts)
    items = [render(p, call.subject, counts.get(p.name, 0)) for p in await visible_projects(call)]
    name, public, owner = call.query("name"), call.query("public"), call.query("owner")
    if name:
        items = [i for i in items if name.lower() in i["name"]]
    if public is not None:
        if public.lower() not in ("true", "false", "1", "0"):
            raise BadRequest(f"public must be true or false, not {public!r}")
        wanted = "true" if public.lower() in ("true", "1") else "false"
        items = [i for i in items if i["metadata"]["public"] == wanted]
    if owner:
        items = [i for i in items if i["owner_name"] == owner]
    for item in items:
        item["_public"] = item["metadata"]["public"]
    return listing(call, items, {"public": "_public", "owner": "owner_name"},
                   render=lambda i: {k: v for k, v in i.items() if not k.startswith("_")})


@operation("HEAD", "/projects", "Check if a project name exists", "project",
           params=[("project_name", "query", "string")], public=True)
async def headProject(call: Call) -> Response:
    name = call.query("project_name")
    if not name:
        raise BadRequest("project_name is required")
    exists = await call.auth.store.query(call.auth.projects.by_name, name)
    if exists is None:
        raise NotFound(f"project {name} not found")
    return ok()


@operation("POST", "/projects", "Create a project", "project", body=ProjectReq, status=201,
           params=[("X-Resource-Name-In-Location", "header", "boolean")])
async def createProject(call: Call) -> Response:
    call.require_login()
    settings = call.auth.settings
    may_create = rbac.allowed_system(call.subject, "project", "create") or (
        settings.project_creation_restriction == "everyone" and call.subject.kind == "user")
    call.require(may_create, "create projects")
    req = await call.body(ProjectReq)
    name = req.project_name or ""
    if not name or not PROJECT_NAME.match(name):
        raise BadRequest(f"invalid project name {name!r}: use lower-case letters and digits, optionally separated "
                         "by single '.', '_' or '-' (e.g. team-a)")
    if req.registry_id:
        raise BadRequest("proxy-cache projects (registry_id) are not supported by this registry")
    public, metadata = _metadata(req)
    owner = call.subject.id if call.subject.kind == "user" and call.subject.id is not None else 1
    project_id = await call.run(call.auth.projects.create, name, owner, public, metadata)
    if project_id is None:
        raise Conflict(f"project {name} already exists")
    in_location = call.request.headers.get("x-resource-name-in-location", "").lower() == "true"
    return created(f"/api/v2.0/projects/{name if in_location else project_id}")


@operation("GET", "/projects/{project_name_or_id}", "Get a project", "project", response="Project",
           params=NAME_OR_ID, public=True)
async def getProject(call: Call) -> Response:
    project = await project_by_name_or_id(call)
    counts = await call.auth.store.query(call.auth.projects.repo_counts)
    return JSONResponse(render(project, call.subject, counts.get(project.name, 0)))


@operation("PUT", "/projects/{project_name_or_id}", "Update a project", "project", body=ProjectReq, params=NAME_OR_ID)
async def updateProject(call: Call) -> Response:
    project = await project_by_name_or_id(call, "project", "update", "update the project")
    req = await call.body(ProjectReq)
    if req.project_name and req.project_name != project.name:
        raise BadRequest("a project cannot be renamed")
    public, metadata = _metadata(req, metadata_of(project))
    await call.run(call.auth.projects.update, project.id, public, metadata)
    return ok()


@operation("DELETE", "/projects/{project_name_or_id}", "Delete an empty project", "project", params=NAME_OR_ID)
async def deleteProject(call: Call) -> Response:
    project = await project_by_name_or_id(call, "project", "delete", "delete the project")
    if not await call.run(call.auth.projects.delete_if_empty, project):
        raise PreconditionFailed(f"project {project.name} still holds repositories; delete them first")
    return ok()


@operation("GET", "/projects/{project_name_or_id}/_deletable", "Whether a project can be deleted", "project",
           response="ProjectDeletable", params=NAME_OR_ID)
async def getProjectDeletable(call: Call) -> Response:
    project = await project_by_name_or_id(call, "project", "delete", "delete the project")
    count = (await call.auth.store.query(call.auth.projects.repo_counts)).get(project.name, 0)
    return JSONResponse({"deletable": count == 0,
                         "message": "" if count == 0 else f"the project holds {count} repositories"})


@operation("GET", "/projects/{project_name_or_id}/summary", "Project summary", "project",
           response="ProjectSummary", params=NAME_OR_ID, public=True)
async def getProjectSummary(call: Call) -> Response:
    project = await project_by_name_or_id(call)
    count = (await call.auth.store.query(call.auth.projects.repo_counts)).get(project.name, 0)
    summary: dict[str, Any] = {"repo_count": count}
    if can(call, project, "member", "list"):
        members = await call.auth.store.query(call.auth.projects.members, project.id)
        for role_id, key in ((1, "project_admin_count"), (4, "maintainer_count"), (2, "developer_count"),
                             (3, "guest_count"), (5, "limited_guest_count")):
            summary[key] = sum(1 for m in members if m.role_id == role_id)
    return JSONResponse(summary)

