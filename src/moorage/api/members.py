"""``/projects/{project_name_or_id}/members``: users and their Harbor roles in a project."""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from moorage.api.base import PAGED, BadRequest, Call, Conflict, Forbidden, NotFound, created, listing, ok, operation
from moorage.api.models import ProjectMember, RoleRequest
from moorage.api.projects import NAME_OR_ID, project_by_name_or_id, ref
from moorage.auth import rbac
from moorage.auth.rbac import ROLE_NAMES
from moorage.meta.projects import Member, Project

MEMBER = [*NAME_OR_ID, ("mid", "path", "integer")]


def render(member: Member) -> dict[str, Any]:
    return {"id": member.id, "project_id": member.project_id, "entity_name": member.username,
            "role_name": ROLE_NAMES.get(member.role_id, ""), "role_id": member.role_id, "entity_id": member.user_id,
            "entity_type": "u"}


def _role(call: Call, project: Project, role_id: int) -> int:
    if role_id not in ROLE_NAMES:
        raise BadRequest(f"role_id must be one of 1 (projectAdmin), 2 (developer), 3 (guest), 4 (maintainer), "
                         f"5 (limitedGuest), not {role_id}")
    problem = rbac.role_ungrantable(call.subject, ref(project), role_id)
    if problem:
        raise Forbidden(problem)
    return role_id


async def _member(call: Call, project_id: int) -> Member:
    raw = call.params["mid"]
    members = await call.auth.store.query(call.auth.projects.members, project_id)
    found = next((m for m in members if str(m.id) == raw), None)
    if found is None:
        raise NotFound(f"member {raw} not found in the project")
    return found


@operation("GET", "/projects/{project_name_or_id}/members", "List project members", "member",
           response="ProjectMemberEntity[]", params=[*NAME_OR_ID, *PAGED[:2], ("entityname", "query", "string")])
async def listProjectMembers(call: Call) -> Response:
    project = await project_by_name_or_id(call, "member", "list", "list members")
    items = [render(m) for m in await call.auth.store.query(call.auth.projects.members, project.id)]
    entity = call.query("entityname")
    if entity:
        items = [i for i in items if entity.lower() in i["entity_name"].lower()]
    return listing(call, items)


@operation("POST", "/projects/{project_name_or_id}/members", "Add a project member", "member", body=ProjectMember,
           status=201, params=NAME_OR_ID)
async def createProjectMember(call: Call) -> Response:
    project = await project_by_name_or_id(call, "member", "create", "add members")
    req = await call.body(ProjectMember)
    role_id = _role(call, project, req.role_id)
    if req.member_group and not req.member_user:
        raise BadRequest("group members are not supported by this registry; add users (member_user)")
    entity = req.member_user
    if entity is None or (entity.user_id is None and not entity.username):
        raise BadRequest("member_user with user_id or username is required")
    identity = call.auth.identity
    user = await call.auth.store.query(identity.user_by_id, entity.user_id) if entity.user_id is not None \
        else await call.auth.store.query(identity.user_by_name, entity.username)
    if user is None:
        raise NotFound(f"user {entity.username or entity.user_id} not found")
    member_id = await call.run(call.auth.projects.add_member, project.id, user.id, role_id)
    if member_id is None:
        raise Conflict(f"{user.username} is already a member of project {project.name}")
    return created(f"/api/v2.0/projects/{project.id}/members/{member_id}")


@operation("GET", "/projects/{project_name_or_id}/members/{mid}", "Get a project member", "member",
           response="ProjectMemberEntity", params=MEMBER)
async def getProjectMember(call: Call) -> Response:
    project = await project_by_name_or_id(call, "member", "read", "read members")
    return JSONResponse(render(await _member(call, project.id)))


@operation("PUT", "/projects/{project_name_or_id}/members/{mid}", "Change a member's role", "member",
           body=RoleRequest, params=MEMBER)
async def updateProjectMember(call: Call) -> Response:
    project = await project_by_name_or_id(call, "member", "update", "change member roles")
    member = await _member(call, project.id)
    req = await call.body(RoleRequest)
    if member.user_id == call.subject.id and call.subject.kind == "user" and not call.subject.sysadmin:
        raise Forbidden("you cannot change your own role")
    await call.run(call.auth.projects.set_member_role, project.id, member.id, _role(call, project, req.role_id))
    return ok()


@operation("DELETE", "/projects/{project_name_or_id}/members/{mid}", "Remove a project member", "member",
           params=MEMBER)
async def deleteProjectMember(call: Call) -> Response:
    project = await project_by_name_or_id(call, "member", "delete", "remove members")
    member = await _member(call, project.id)
    await call.run(call.auth.projects.remove_member, project.id, member.id)
    return ok()
