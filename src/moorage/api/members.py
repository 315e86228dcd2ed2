"""``/projects/{project_name_or_id}/members``: users and their Harbor roles in a project."""

from __future__ import annotations

from moorage.api.base import BadRequest, Call, Conflict, Forbidden, NotFound
from moorage.api.listing import page_of
from moorage.api.models.projects import ProjectMember, ProjectMemberEntity, RoleRequest
from moorage.api.operations import Created, Page, operation
from moorage.api.params import Id, PageQuery, storable_id
from moorage.api.projects import ProjectNameHeaders, ProjectPath, project_by_name_or_id, record, ref
from moorage.auth import rbac
from moorage.auth.rbac import ROLE_NAMES
from moorage.meta.identity import User
from moorage.meta.projects import Member, Project


class MemberPath(ProjectPath):
    mid: Id


class MemberListQuery(PageQuery):
    entityname: str | None = None


def render(member: Member) -> ProjectMemberEntity:
    return ProjectMemberEntity(id=member.id, project_id=member.project_id, entity_name=member.username,
                               role_name=ROLE_NAMES.get(member.role_id, ""), role_id=member.role_id,
                               entity_id=member.user_id, entity_type="u")


def _role(call: Call, project: Project, role_id: int) -> int:
    if role_id not in ROLE_NAMES:
        raise BadRequest(f"role_id must be one of 1 (projectAdmin), 2 (developer), 3 (guest), 4 (maintainer), "
                         f"5 (limitedGuest), not {role_id}")
    problem = rbac.role_ungrantable(call.subject, ref(project), role_id)
    if problem:
        raise Forbidden(problem)
    return role_id


async def _member(call: Call, project_id: int, member_id: int) -> Member:
    members = await call.query(call.auth.projects.members, project_id)
    found = next((m for m in members if m.id == member_id), None)
    if found is None:
        raise NotFound(f"member {member_id} not found in the project")
    return found


@operation("GET", "/projects/{project_name_or_id}/members", "List project members", "member")
async def listProjectMembers(call: Call, path: ProjectPath, headers: ProjectNameHeaders,
                             query: MemberListQuery) -> Page[ProjectMemberEntity]:
    project = await project_by_name_or_id(call, path, headers, "member", "list", "list members")
    items = [render(m) for m in await call.query(call.auth.projects.members, project.id)]
    if query.entityname:
        items = [i for i in items if query.entityname.lower() in i.entity_name.lower()]
    return page_of(items, query)


@operation("POST", "/projects/{project_name_or_id}/members", "Add a project member", "member", errors=(409,))
async def createProjectMember(call: Call, path: ProjectPath, headers: ProjectNameHeaders,
                              body: ProjectMember) -> Created[None]:
    project = await project_by_name_or_id(call, path, headers, "member", "create", "add members")
    role_id = _role(call, project, body.role_id)
    if body.member_group and not body.member_user:
        raise BadRequest("group members are not supported by this registry; add users (member_user)")
    entity = body.member_user
    if entity is None or (entity.user_id is None and not entity.username):
        raise BadRequest("member_user with user_id or username is required")
    identity = call.auth.identity
    user: User | None
    if entity.user_id is not None:
        user = await call.query(identity.user_by_id, entity.user_id) if storable_id(entity.user_id) else None
    else:
        user = await call.query(identity.user_by_name, entity.username or "")
    if user is None:
        raise NotFound(f"user {entity.username or entity.user_id} not found")
    member_id = await call.run(call.auth.projects.add_member, project.id, user.id, role_id)
    if member_id is None:
        raise Conflict(f"{user.username} is already a member of project {project.name}")
    await record(call, user.username, "project_member", "create", project.name)
    return Created(f"/api/v2.0/projects/{project.id}/members/{member_id}")


@operation("GET", "/projects/{project_name_or_id}/members/{mid}", "Get a project member", "member")
async def getProjectMember(call: Call, path: MemberPath, headers: ProjectNameHeaders) -> ProjectMemberEntity:
    project = await project_by_name_or_id(call, path, headers, "member", "read", "read members")
    return render(await _member(call, project.id, path.mid))


@operation("PUT", "/projects/{project_name_or_id}/members/{mid}", "Change a member's role", "member")
async def updateProjectMember(call: Call, path: MemberPath, headers: ProjectNameHeaders, body: RoleRequest) -> None:
    project = await project_by_name_or_id(call, path, headers, "member", "update", "change member roles")
    member = await _member(call, project.id, path.mid)
    if member.user_id == call.subject.id and call.subject.kind == "user" and not call.subject.sysadmin:
        raise Forbidden("you cannot change your own role")
    await call.run(call.auth.projects.set_member_role, project.id, member.id, _role(call, project, body.role_id))
    await record(call, member.username, "project_member", "update", project.name)


@operation("DELETE", "/projects/{project_name_or_id}/members/{mid}", "Remove a project member", "member")
async def deleteProjectMember(call: Call, path: MemberPath, headers: ProjectNameHeaders) -> None:
    project = await project_by_name_or_id(call, path, headers, "member", "delete", "remove members")
    member = await _member(call, project.id, path.mid)
    await call.run(call.auth.projects.remove_member, project.id, member.id)
    await record(call, member.username, "project_member", "delete", project.name)
