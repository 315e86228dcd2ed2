"""``/projects``: list, create, exists-by-name, get, update, delete, summary, deletable."""

from __future__ import annotations

import re

from pydantic import Field

from moorage.api.base import BadRequest, Call, Conflict, NotFound, PreconditionFailed, iso
from moorage.api.listing import listing, page_of
from moorage.api.models.projects import (
    CVEAllowlist,
    CVEAllowlistItem,
    Project,
    ProjectDeletable,
    ProjectMetadata,
    ProjectReq,
    ProjectSummary,
)
from moorage.api.models.quotas import ProjectSummaryQuota
from moorage.api.operations import Created, Page, operation
from moorage.api.params import ListQuery, Params, resource_id, storable_id
from moorage.auth import rbac
from moorage.core import quotas
from moorage.meta import projects as meta
from moorage.meta.quotas import UNLIMITED

PROJECT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
CVE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,255}$")


class ProjectPath(Params):
    #: An id when all digits, else a name (unless ``X-Is-Resource-Name`` says it is a name).
    project_name_or_id: str


class ProjectNameHeaders(Params):
    is_resource_name: bool = Field(default=False, alias="X-Is-Resource-Name")


class ProjectNamePath(Params):
    project_name: str


class ProjectListQuery(ListQuery):
    name: str | None = None
    public: bool | None = None
    owner: str | None = None
    with_detail: bool = True


class HeadProjectQuery(Params):
    project_name: str


class CreateProjectHeaders(Params):
    resource_name_in_location: bool = Field(default=False, alias="X-Resource-Name-In-Location")


def ref(project: meta.Project) -> rbac.ProjectRef:
    return rbac.ProjectRef(project.id, project.name, project.public)


def can(call: Call, project: meta.Project, resource: str, action: str) -> bool:
    return rbac.allowed(call.subject, ref(project), resource, action)


async def project_by_name(call: Call, name: str, resource: str = "project", action: str = "read",
                          what: str = "read the project") -> meta.Project:
    """The named project, if the caller may ``action`` on its ``resource``; 404 / 401 / 403 otherwise."""
    project = await call.query(call.auth.projects.by_name, name)
    return _visible(call, project, name, resource, action, what)


async def project_by_name_or_id(call: Call, path: ProjectPath, headers: ProjectNameHeaders, resource: str = "project",
                                action: str = "read", what: str = "read the project") -> meta.Project:
    value = path.project_name_or_id
    project: meta.Project | None
    if not headers.is_resource_name and value.isascii() and value.isdigit():
        project_id = resource_id(value, "project id")
        project = await call.query(call.auth.projects.by_id, project_id) if storable_id(project_id) else None
    else:
        project = await call.query(call.auth.projects.by_name, value)
    return _visible(call, project, value, resource, action, what)


def _visible(call: Call, project: meta.Project | None, label: str, resource: str, action: str,
             what: str) -> meta.Project:
    if project is None:
        raise NotFound(f"project {label} not found")
    if not can(call, project, "project", "read"):
        # Callers who may not even read the project learn nothing more than that.
        call.require(False, f"access project {project.name}")
    call.require(can(call, project, resource, action), f"{what} in project {project.name}")
    return project


def metadata_of(project: meta.Project) -> dict[str, str]:
    return {**project.metadata, "public": "true" if project.public else "false"}


def allowlist_of(project: meta.Project) -> CVEAllowlist:
    """The project's CVE allowlist (one per project, so it shares the project's id)."""
    stored = project.cve_allowlist or {}
    return CVEAllowlist(id=project.id, project_id=project.id, expires_at=stored.get("expires_at"),
                        items=[CVEAllowlistItem(cve_id=cve) for cve in stored.get("items", [])],
                        creation_time=iso(stored.get("created_at", project.created_at)),
                        update_time=iso(stored.get("updated_at", project.updated_at)))


def render(project: meta.Project, subject: rbac.Subject, repo_count: int) -> Project:
    role = subject.roles.get(project.id) if subject.kind == "user" else None
    return Project(
        project_id=project.id, owner_id=project.owner_id, name=project.name, registry_id=0,
        creation_time=iso(project.created_at), update_time=iso(project.updated_at), deleted=False,
        owner_name=project.owner_name, togglable=True, current_user_role_id=role or 0,
        current_user_role_ids=[role] if role else [], repo_count=repo_count,
        metadata=ProjectMetadata.model_validate(metadata_of(project)), cve_allowlist=allowlist_of(project))


def _metadata(req: ProjectReq, current: dict[str, str] | None = None) -> tuple[bool, dict[str, str]]:
    metadata = dict(current or {})
    for key, value in (req.metadata or {}).items():
        if value is None:
            continue
        metadata[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
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


def _allowlist(req: ProjectReq) -> tuple[list[str], int | None] | None:
    """The CVE ids (each once, in order) and expiry a request sets, or None when it sets none."""
    given = req.cve_allowlist
    if given is None:
        return None
    items: list[str] = []
    for index, item in enumerate(given.items or []):
        cve = (item.cve_id or "").strip()
        if not CVE_ID.match(cve):
            raise BadRequest(f"cve_allowlist.items[{index}].cve_id must be a CVE id such as CVE-2024-3094, "
                             f"not {item.cve_id!r}")
        if cve not in items:
            items.append(cve)
    if given.expires_at is not None and given.expires_at < 0:
        raise BadRequest("cve_allowlist.expires_at must be epoch seconds, or null for never")
    return items, given.expires_at


def _storage_limit(call: Call, req: ProjectReq, current: int = UNLIMITED) -> int | None:
    """The storage limit a request sets (bytes, -1 none), or None when it sets none. Only those who may change
    quotas change one; anyone may repeat the current one (a new project's is "no limit"), as clients send the
    whole project back."""
    if req.storage_limit is None:
        return None
    limit = quotas.storage_limit(req.storage_limit)
    call.require(limit == current or rbac.allowed_system(call.subject, "quota", "update"),
                 "change a project's storage limit (only a system administrator may)")
    return limit


async def visible_projects(call: Call) -> list[meta.Project]:
    projects = await call.query(call.auth.projects.list)
    return [p for p in projects if can(call, p, "project", "read")]


async def record(call: Call, resource: str, resource_type: str, operation_name: str, project: str | None) -> None:
    """An entry in the audit log, under Harbor's names (resource_type project, robot, project_member, ...)."""
    await call.run(call.auth.audit.record, call.subject.name or "anonymous", resource, resource_type, operation_name,
                   project, call.client())


@operation("GET", "/projects", "List projects", "project", public=True)
async def listProjects(call: Call, query: ProjectListQuery) -> Page[Project]:
    counts = await call.query(call.auth.projects.repo_counts)
    if not query.q and not query.sort:
        # The usual listing: filtered and paged before rendering, so 1,000 projects render one page of them.
        chosen = [p for p in sorted(await visible_projects(call), key=lambda p: p.name)
                  if (not query.name or query.name.lower() in p.name)
                  and (query.public is None or p.public == query.public)
                  and (not query.owner or p.owner_name == query.owner)]
        page = page_of(chosen, query)
        return Page([render(p, call.subject, counts.get(p.name, 0)) for p in page.items], page.total)
    # By name unless sorted otherwise, as Harbor lists projects.
    items = [render(p, call.subject, counts.get(p.name, 0))
             for p in sorted(await visible_projects(call), key=lambda p: p.name)]
    if query.name:
        items = [i for i in items if query.name.lower() in i.name]
    if query.public is not None:
        wanted = "true" if query.public else "false"
        items = [i for i in items if i.metadata.public == wanted]
    if query.owner:
        items = [i for i in items if i.owner_name == query.owner]
    return listing(items, query, q=query.q, sort=query.sort, view=lambda p: {"public": p.metadata.public},
                   aliases={"owner": "owner_name"})


@operation("HEAD", "/projects", "Check if a project name exists", "project", public=True, errors=(404,))
async def headProject(call: Call, query: HeadProjectQuery) -> None:
    if not query.project_name:
        raise BadRequest("project_name is required")
    if await call.query(call.auth.projects.by_name, query.project_name) is None:
        raise NotFound(f"project {query.project_name} not found")


@operation("POST", "/projects", "Create a project", "project", errors=(409,))
async def createProject(call: Call, headers: CreateProjectHeaders, body: ProjectReq) -> Created[None]:
    call.require_login()
    settings = call.auth.settings
    may_create = rbac.allowed_system(call.subject, "project", "create") or (
        settings.project_creation_restriction == "everyone" and call.subject.kind == "user")
    call.require(may_create, "create projects")
    name = body.project_name or ""
    if not name or not PROJECT_NAME.match(name):
        raise BadRequest(f"invalid project name {name!r}: use lower-case letters and digits, optionally separated "
                         "by single '.', '_' or '-' (e.g. team-a)")
    if body.registry_id:
        raise BadRequest("proxy-cache projects (registry_id) are not supported by this registry")
    public, metadata = _metadata(body)
    allowlist = _allowlist(body)
    limit = _storage_limit(call, body)
    owner = call.subject.id if call.subject.kind == "user" and call.subject.id is not None else 1
    project_id = await call.run(call.auth.projects.create, name, owner, public, metadata, allowlist,
                                UNLIMITED if limit is None else limit)
    if project_id is None:
        raise Conflict(f"project {name} already exists")
    await record(call, name, "project", "create", name)
    return Created(f"/api/v2.0/projects/{name if headers.resource_name_in_location else project_id}")


@operation("GET", "/projects/{project_name_or_id}", "Get a project", "project", public=True)
async def getProject(call: Call, path: ProjectPath, headers: ProjectNameHeaders) -> Project:
    project = await project_by_name_or_id(call, path, headers)
    counts = await call.query(call.auth.projects.repo_counts)
    return render(project, call.subject, counts.get(project.name, 0))


@operation("PUT", "/projects/{project_name_or_id}", "Update a project", "project")
async def updateProject(call: Call, path: ProjectPath, headers: ProjectNameHeaders, body: ProjectReq) -> None:
    project = await project_by_name_or_id(call, path, headers, "project", "update", "update the project")
    if body.project_name and body.project_name != project.name:
        raise BadRequest("a project cannot be renamed")
    public, metadata = _metadata(body, metadata_of(project))
    quota = await call.query(call.auth.projects.quotas.of_project, project.id)
    limit = _storage_limit(call, body, quota.hard if quota is not None else UNLIMITED)
    await call.run(call.auth.projects.update, project, public, metadata, _allowlist(body))
    if limit is not None:
        await call.run(call.auth.projects.quotas.set_project_hard, project.id, limit)


@operation("DELETE", "/projects/{project_name_or_id}", "Delete an empty project", "project", errors=(412,))
async def deleteProject(call: Call, path: ProjectPath, headers: ProjectNameHeaders) -> None:
    project = await project_by_name_or_id(call, path, headers, "project", "delete", "delete the project")
    if not await call.run(call.auth.projects.delete_if_empty, project):
        raise PreconditionFailed(f"project {project.name} still holds repositories; delete them first")
    await record(call, project.name, "project", "delete", project.name)


@operation("GET", "/projects/{project_name_or_id}/_deletable", "Whether a project can be deleted", "project")
async def getProjectDeletable(call: Call, path: ProjectPath, headers: ProjectNameHeaders) -> ProjectDeletable:
    project = await project_by_name_or_id(call, path, headers, "project", "delete", "delete the project")
    count = (await call.query(call.auth.projects.repo_counts)).get(project.name, 0)
    return ProjectDeletable(deletable=count == 0,
                            message="" if count == 0 else f"the project holds {count} repositories")


@operation("GET", "/projects/{project_name_or_id}/summary", "Project summary", "project", public=True)
async def getProjectSummary(call: Call, path: ProjectPath, headers: ProjectNameHeaders) -> ProjectSummary:
    project = await project_by_name_or_id(call, path, headers)
    summary = ProjectSummary(repo_count=(await call.query(call.auth.projects.repo_counts)).get(project.name, 0))
    if can(call, project, "member", "list"):
        members = await call.query(call.auth.projects.members, project.id)
        for role_id, key in ((1, "project_admin_count"), (4, "maintainer_count"), (2, "developer_count"),
                             (3, "guest_count"), (5, "limited_guest_count")):
            setattr(summary, key, sum(1 for m in members if m.role_id == role_id))
    if can(call, project, "quota", "read"):
        quota = await call.query(call.auth.projects.quotas.of_project, project.id)
        if quota is not None:
            summary.quota = ProjectSummaryQuota(hard={"storage": quota.hard}, used={"storage": quota.used})
    return summary
