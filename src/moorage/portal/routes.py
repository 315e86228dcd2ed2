"""The portal's URL map: ``/`` sends the browser to its projects (or to sign in); pages live under
``/portal/``, their assets under ``/portal/static/``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from moorage.portal.pages import admin, login, nodes, policies, projects, repository
from moorage.portal.web import HERE, render

GET, POST = ["GET"], ["POST"]


async def not_found(request: Request) -> Response:
    return render(request, "error.html", 404, session=None, title="Not found",
                  message=f"There is no page at {request.url.path}.")


def routes() -> list[BaseRoute]:
    project = "/projects/{project}"
    return [
        Route("/", login.home, methods=GET),
        Mount("/portal", routes=[
            Mount("/static", app=StaticFiles(directory=HERE / "static"), name="portal-static"),
            Route("/", login.home, methods=GET),
            Route("/login", login.login_page, methods=GET),
            Route("/login", login.login, methods=POST),
            Route("/logout", login.logout, methods=POST),
            Route("/ca.crt", nodes.ca_download, methods=GET),
            Route("/projects", projects.project_list, methods=GET),
            Route("/projects", projects.project_create, methods=POST),
            Route(project, projects.project_summary, methods=GET),
            Route(f"{project}/delete", projects.project_delete, methods=POST),
            Route(f"{project}/members", projects.member_list, methods=GET),
            Route(f"{project}/members", projects.member_add, methods=POST),
            Route(f"{project}/members/{{mid}}/role", projects.member_role, methods=POST),
            Route(f"{project}/members/{{mid}}/remove", projects.member_remove, methods=POST),
            Route(f"{project}/robots", projects.robot_list, methods=GET),
            Route(f"{project}/robots", projects.robot_create, methods=POST),
            Route(f"{project}/robots/{{robot_id}}/{{action}}", projects.robot_action, methods=POST),
            Route(f"{project}/logs", projects.project_logs, methods=GET),
            Route(f"{project}/nodes", nodes.nodes_page, methods=GET),
            Route(f"{project}/policies", policies.policies_page, methods=GET),
            Route(f"{project}/repositories/{{repo:path}}", repository.repository_page, methods=GET),
            Route(f"{project}/artifacts/delete", repository.artifact_delete, methods=POST),
            Route(f"{project}/tags/delete", repository.tag_delete, methods=POST),
            Route(f"{project}/repository/delete", repository.repository_delete, methods=POST),
            Route("/admin/users", admin.user_list, methods=GET),
            Route("/admin/users", admin.user_create, methods=POST),
            Route("/admin/robots", admin.robot_list, methods=GET),
            Route("/admin/audit", admin.audit_log, methods=GET),
            Route("/admin/gc", admin.gc_history, methods=GET),
            Route("/{rest:path}", not_found),
        ]),
    ]
