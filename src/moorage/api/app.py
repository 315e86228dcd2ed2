"""``/api/v2.0``: the Harbor-compatible management API as one Starlette app (mounted by ``moorage.app``).

Every response carries ``X-Request-Id`` (the client's, or a new one); every error is Harbor's
``{"errors":[{"code","message"}]}``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable

import sqlalchemy.exc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moorage.api import members, projects, repositories, robots, system, users  # noqa: F401  (registers operations)
from moorage.api.base import (
    OPERATIONS,
    ApiError,
    Call,
    InternalError,
    MethodNotAllowed,
    NotFound,
    Unavailable,
    resolve_subject,
)
from moorage.api.openapi import document
from moorage.settings import Settings

log = logging.getLogger("moorage.api")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), "")
        request_id = given if given and len(given) <= 128 and given.isprintable() else str(uuid.uuid4())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


def _endpoint(handler: Callable[[Call], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        auth = request.app.state.auth
        subject = await resolve_subject(request, auth)
        return await handler(Call(request, auth, subject))
    return endpoint


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    response = exc.response()
    if request.method == "HEAD":
        return Response(status_code=response.status_code)
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return MethodNotAllowed(f"{request.method} is not supported on {request.url.path}").response()
    if exc.status_code == 404:
        return NotFound(f"{request.url.path} is not an endpoint of this API").response()
    return InternalError(str(exc.detail)).response()


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("metadata database unavailable during %s %s: %s", request.method, request.url.path,
                getattr(exc, "orig", exc))
    return Unavailable("the registry cannot reach its metadata database right now; retry shortly "
                       "(the registry's log names the cause)").response()


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return InternalError("internal error; the server logged the details").response()


def create_api(settings: Settings) -> Starlette:
    # Most specific first: repository names hold slashes, so ".../artifacts/x" must not match a repository.
    ordered = sorted(OPERATIONS, key=lambda op: -op.path.count("/"))
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for op in ordered:
        by_path.setdefault(op.path, {})[op.method] = _endpoint(op.handler)
    routes = [Route(path, _dispatcher(handlers), methods=[*handlers, "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])
              for path, handlers in by_path.items()]
    spec = document(OPERATIONS)

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    routes.insert(0, Route("/openapi.json", openapi, methods=["GET"]))
    app = Starlette(routes=routes, exception_handlers={ApiError: _api_error, HTTPException: _http_error,
                                                       sqlalchemy.exc.OperationalError: _database_unavailable,
                                                       Exception: _unexpected})
    assert isinstance(app.router, Router)
    app.router.redirect_slashes = False
    app.add_middleware(RequestIdMiddleware)
    return app


def _dispatcher(handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> Callable[[Request],
                                                                                             Awaitable[Response]]:
    allowed = ", ".join(sorted(handlers))

    async def dispatch(request: Request) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}; use {allowed}")
        return await handler(request)
    return dispatch
