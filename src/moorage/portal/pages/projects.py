"""The projects list (search, paging, create, delete) and a project's own pages: summary with its
repositories, members, robot accounts and audit log."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import ValidationError
from starlette.responses import Response

from moorage.api import members, projects, repositories, robots, system
from moorage.api.base import ApiError, BadRequest, explain
from moorage.api.models.projects import ProjectMember, ProjectReq, RoleRequest, UserEntity
from moorage.api.models.robots import Access, RobotCreate, RobotPermission, RobotSec
from moorage.api.models.robots import Robot as RobotUpdate
from moorage.api.params import whole_number
from moorage.auth import rbac
from moorage.portal.pages.common import ROLES, project_view, quota_of, summary_of
from moorage.portal.web import Ctx, page, search_text

UNITS = {"MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
#: What a project robot may be given here, as Harbor names the permissions.
ROBOT_ACCESS = [("pull", "Pull images"), ("push", "Push images"), ("delete", "Delete images")]


def project_url(name: str, *rest: str) -> str:
    return "/".join([f"/portal/projects/{quote(name, safe='')}", *rest])


def _may_create(ctx: Ctx) -> bool:
    return rbac.allowed_system(ctx.subject, "project", "create") or (
        ctx.auth.settings.project_creation_restriction == "everyone" and ctx.subject.kind == "user")


@page
async def project_list(ctx: Ctx) -> Response:
    search = search_text(ctx.request, "q")
    pager = ctx.pager(keep=("q",))
    query = {**pager.query(), **({"name": search} if search else {})}
    found = await ctx.call(projects.listProjects, query=query)
    pager.total = found.total
    rows = []
    for project in found.items:
        ref = rbac.ProjectRef(project.project_id, project.name, project.metadata.public == "true")
        rows.append({"project": project, "deletable": rbac.allowed(ctx.subject, ref, "project", "delete")})
    return ctx.render("projects.html", rows=rows, pager=pager, search=search, may_create=_may_create(ctx),
                      may_limit=rbac.allowed_system(ctx.subject, "quota", "update"), units=list(UNITS))


def _storage_limit(form: dict[str, str]) -> int | None:
    raw = form.get("storage_limit", "").strip()
    if not raw:
        return None
    unit = UNITS.get(form.get("storage_unit", "GiB"))
    if unit is None:
        raise BadRequest("choose MiB, GiB or TiB for the storage limit")
    return whole_number(raw, "storage limit", 1, 2**63 // unit - 1) * unit


@page
async def project_create(ctx: Ctx) -> Response:
    name = ctx.form.get("project_name", "").strip()
    public = ctx.form.get("visibility") == "public"
    try:
        limit = _storage_limit(ctx.form)
    except (ApiError, ValueError) as exc:
        ctx.flash(str(exc), "error")
        return ctx.redirect("/portal/projects")
    body = ProjectReq(project_name=name, metadata={"public": "true" if public else "false"}, storage_limit=limit)
    work = ctx.call(projects.createProject, headers={}, body=body)
    return await ctx.act(project_url(name) if name else "/portal/projects", work,
                         f"Project {name} created ({'public' if public else 'private'}).")


@page
async def project_delete(ctx: Ctx) -> Response:
    name = ctx.request.path_params["project"]
    try:
        await ctx.call(projects.deleteProject, path={"project_name_or_id": name},
                       headers={"is_resource_name": "true"})
    except ApiError as exc:
        ctx.flash(exc.message, "error")
        return ctx.redirect(project_url(name))
    ctx.flash(f"Project {name} deleted.")
    return ctx.redirect("/portal/projects")


@page
async def project_summary(ctx: Ctx) -> Response:
    name = ctx.request.path_params["project"]
    view = await project_view(ctx, name)
    summary = await summary_of(ctx, name)
    search = search_text(ctx.request, "q")
    pager = ctx.pager(keep=("q",))
    query = {**pager.query(), **({"q": f"name=~{search}"} if search else {})}
    repos = await ctx.call(repositories.listRepositories, path={"project_name": name}, query=query)
    pager.total = repos.total
    role_counts = [(label, getattr(summary, key)) for label, key in (
        ("Project admins", "project_admin_count"), ("Maintainers", "maintainer_count"),
        ("Developers", "developer_count"), ("Guests", "guest_count"), ("Limited guests", "limited_guest_count"))]
    return ctx.render("project.html", view=view, tab="summary", summary=summary, quota=quota_of(summary),
                      role_counts=role_counts, repos=repos.items, pager=pager, search=search,
                      prefix=name + "/")


@page
async def member_list(ctx: Ctx) -> Response:
    name = ctx.request.path_params["project"]
    view = await project_view(ctx, name)
    pager = ctx.pager()
    found = await ctx.call(members.listProjectMembers, path={"project_name_or_id": name},
                           headers={"is_resource_name": "true"}, query=pager.query())
    pager.total = found.total
    return ctx.render("members.html", view=view, tab="members", members=found.items, pager=pager, roles=ROLES)


def _role(form: dict[str, str]) -> int:
    try:
        return whole_number(form.get("role_id", ""), "role", 1, 5)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None


@page
async def member_add(ctx: Ctx) -> Response:
    name = ctx.request.path_params["project"]
    username = ctx.form.get("username", "").strip()
    body = ProjectMember(role_id=_role(ctx.form), member_user=UserEntity(username=username))
    work = ctx.call(members.createProjectMember, path={"project_name_or_id": name},
                    headers={"is_resource_name": "true"}, body=body)
    return await ctx.act(project_url(name, "members"), work, f"{username} added to {name}.")


@page
async def member_role(ctx: Ctx) -> Response:
    name, mid = ctx.request.path_params["project"], ctx.request.path_params["mid"]
    work = ctx.call(members.updateProjectMember, path={"project_name_or_id": name, "mid": mid},
                    headers={"is_resource_name": "true"}, body=RoleRequest(role_id=_role(ctx.form)))
    return await ctx.act(project_url(name, "members"), work, "Role changed.")


@page
async def member_remove(ctx: Ctx) -> Response:
    name, mid = ctx.request.path_params["project"], ctx.request.path_params["mid"]
    work = ctx.call(members.deleteProjectMember, path={"project_name_or_id": name, "mid": mid},
                    headers={"is_resource_name": "true"})
    return await ctx.act(project_url(name, "members"), work, "Member removed.")


async def _robots_page(ctx: Ctx, name: str, secret: dict[str, str] | None = None, status: int = 200) -> Response:
    view = await project_view(ctx, name)
    pager = ctx.pager()
    found = await ctx.call(robots.ListRobot, query={
        **pager.query(), "q": f"Level=project,ProjectID={view.project.project_id}"})
    pager.total = found.total
    return ctx.render("robots.html", status, view=view, tab="robots", robots=found.items, pager=pager,
                      access=ROBOT_ACCESS, secret=secret, default_days=ctx.auth.settings.robot_default_duration_days)


@page
async def robot_list(ctx: Ctx) -> Response:
    return await _robots_page(ctx, ctx.request.path_params["project"])


@page
async def robot_create(ctx: Ctx) -> Response:
    name = ctx.request.path_params["project"]
    chosen = [action for action, _ in ROBOT_ACCESS if ctx.form.get(f"access_{action}")]
    raw_duration = ctx.form.get("duration", "").strip()
    try:
        duration = int(raw_duration) if raw_duration else ctx.auth.settings.robot_default_duration_days
    except ValueError:
        ctx.flash("duration must be a whole number of days (-1: never expires)", "error")
        return ctx.redirect(project_url(name, "robots"))
    try:
        body = RobotCreate(name=ctx.form.get("name", "").strip(), description=ctx.form.get("description", ""),
                           level="project", duration=duration, permissions=[RobotPermission(
                               kind="project", namespace=name,
                               access=[Access(resource="repository", action=a) for a in chosen])])
        created = await ctx.call(robots.CreateRobot, body=body)
    except ValidationError as exc:
        ctx.flash(explain(exc, "robot"), "error")
        return ctx.redirect(project_url(name, "robots"))
    except ApiError as exc:
        ctx.flash(exc.message, "error")
        return ctx.redirect(project_url(name, "robots"))
    assert created.body is not None
    # The secret goes into this one answer and nowhere else: not a redirect, not a cookie, not a log.
    return await _robots_page(ctx, name, {"name": created.body.name, "secret": created.body.secret,
                                         "verb": "created"}, status=201)


@page
async def robot_action(ctx: Ctx) -> Response:
    name, robot_id = ctx.request.path_params["project"], ctx.request.path_params["robot_id"]
    action = ctx.request.path_params["action"]
    path = {"robot_id": robot_id}
    back = project_url(name, "robots")
    if action == "refresh":
        try:
            robot = await ctx.call(robots.GetRobotByID, path=path)
            fresh = await ctx.call(robots.RefreshSec, path=path, body=RobotSec())
        except ApiError as exc:
            ctx.flash(exc.message, "error")
            return ctx.redirect(back)
        return await _robots_page(ctx, name, {"name": robot.name or "", "secret": fresh.secret or "",
                                              "verb": "refreshed"})
    if action in ("disable", "enable"):
        work = ctx.call(robots.UpdateRobot, path=path, body=RobotUpdate(disable=action == "disable"))
        return await ctx.act(back, work, f"Robot {action}d.")
    if action == "delete":
        return await ctx.act(back, ctx.call(robots.DeleteRobot, path=path), "Robot deleted.")
    raise BadRequest(f"unknown robot action {action!r}")


@page
async def project_logs(ctx: Ctx) -> Response:
    name = ctx.request.path_params["project"]
    view = await project_view(ctx, name)
    pager = ctx.pager()
    found = await ctx.call(system.getLogs, path={"project_name": name}, query=pager.query())
    pager.total = found.total
    return ctx.render("logs.html", view=view, tab="logs", logs=found.items, pager=pager, title=f"Logs of {name}")
