"""Signing in and out. Passwords are checked by the registry's own authenticator, so its lockouts and
slow-downs for failed logins hold here exactly as for ``docker login`` and the API."""

from __future__ import annotations

import logging
import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from moorage.api.base import ApiError
from moorage.api.params import text_problem
from moorage.auth.authenticate import LoginRefused, LoginThrottled
from moorage.auth.registry_authorizer import client_address
from moorage.portal import sessions
from moorage.portal.web import Ctx, auth_of, local_path, page, read_form, render, same_origin

log = logging.getLogger("moorage.portal")


def _form(request: Request, status: int = 200, error: str = "", username: str = "") -> Response:
    token = request.cookies.get(sessions.LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = render(request, "login.html", status, session=None, error=error, username=username,
                      next=local_path(request.query_params.get("next")), login_csrf=token,
                      csrf_field=sessions.CSRF_FIELD, flashes=[])
    sessions.set_cookie(response, request, sessions.LOGIN_COOKIE, token, max_age=3600)
    return response


async def login_page(request: Request) -> Response:
    if await sessions.current(request, auth_of(request)) is not None:
        return RedirectResponse(local_path(request.query_params.get("next")), status_code=303)
    return _form(request)


async def login(request: Request) -> Response:
    try:
        form = await read_form(request)
    except ApiError as exc:
        return _form(request, 400, exc.message)
    expected = request.cookies.get(sessions.LOGIN_COOKIE, "")
    if not same_origin(request) or not expected or not sessions.csrf_ok(form.get(sessions.CSRF_FIELD), expected):
        return _form(request, 403, "The sign-in form expired or came from another site. Try again.")
    username, password = form.get("username", "").strip(), form.get("password", "")
    auth = auth_of(request)
    if not username or not password or text_problem(username) or len(username) > 255:
        return _form(request, 400, "Enter your username and password.", username[:255])
    if username.startswith(auth.settings.robot_name_prefix):
        return _form(request, 403, "Robot accounts cannot sign in to the portal; sign in as a user.")
    try:
        subject = await auth.authenticator.login(username, password, client_address(request))
    except LoginRefused:
        return _form(request, 401, "Invalid username or password.", username)
    except LoginThrottled:
        return _form(request, 429, "Too many failed sign-ins; wait a few minutes and try again.", username)
    lifetime = auth.settings.portal_session_minutes * 60
    token = await sessions.open_session(auth, subject, lifetime)
    response = RedirectResponse(local_path(form.get("next")), status_code=303)
    sessions.set_cookie(response, request, sessions.COOKIE, token, max_age=int(lifetime))
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/")
    log.info("portal: %s signed in", subject.name)
    return response


@page
async def logout(ctx: Ctx) -> Response:
    await sessions.close_session(ctx.auth, ctx.session.token)
    response = RedirectResponse("/portal/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


async def home(request: Request) -> Response:
    signed_in = await sessions.current(request, auth_of(request)) is not None
    return RedirectResponse("/portal/projects" if signed_in else "/portal/login", status_code=303)
