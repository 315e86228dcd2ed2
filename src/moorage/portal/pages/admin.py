"""Administration, for system administrators: users, system robot accounts, the audit log and garbage
collection history. The API's handlers refuse everyone else (the pages then show its 403)."""

from __future__ import annotations

from starlette.responses import Response

from moorage.api import gc, robots, system, users
from moorage.api.base import Forbidden
from moorage.auth import rbac
from moorage.portal.web import Ctx, page, search_text


def _administrator(ctx: Ctx, resource: str) -> None:
    """Some of these listings answer others too, with what they may see (a project admin's own audit entries,
    no system robots): the administration pages are for those who may see all of it."""
    if not rbac.allowed_system(ctx.subject, resource, "list"):
        raise Forbidden(f"{ctx.subject.name} is not a system administrator")


@page
async def user_list(ctx: Ctx) -> Response:
    search = search_text(ctx.request, "q")
    pager = ctx.pager(keep=("q",))
    found = await ctx.call(users.listUsers, query={**pager.query(), **({"q": f"username=~{search}"} if search
                                                                      else {})})
    pager.total = found.total
    return ctx.render("admin_users.html", tab="users", users=found.items, pager=pager, search=search)


@page
async def user_create(ctx: Ctx) -> Response:
    username = ctx.form.get("username", "").strip()
    body = {"username": username, "password": ctx.form.get("password", ""), "email": ctx.form.get("email", "").strip(),
            "realname": ctx.form.get("realname", "").strip()}
    work = ctx.call(users.createUser, body=body)
    return await ctx.act("/portal/admin/users", work, f"User {username} created.")


@page
async def robot_list(ctx: Ctx) -> Response:
    _administrator(ctx, "robot")
    pager = ctx.pager()
    found = await ctx.call(robots.ListRobot, query={**pager.query(), "q": "Level=system"})
    pager.total = found.total
    return ctx.render("admin_robots.html", tab="robots", robots=found.items, pager=pager)


@page
async def audit_log(ctx: Ctx) -> Response:
    _administrator(ctx, "audit-log")
    pager = ctx.pager()
    found = await ctx.call(system.listAuditLogs, query={**pager.query(), "sort": "-op_time"})
    pager.total = found.total
    return ctx.render("admin_audit.html", tab="audit", logs=found.items, pager=pager)


@page
async def gc_history(ctx: Ctx) -> Response:
    pager = ctx.pager()
    found = await ctx.call(gc.getGCHistory, query=pager.query())
    pager.total = found.total
    return ctx.render("admin_gc.html", tab="gc", runs=found.items, pager=pager)
