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

# Importing each operation module registers its operations.
import moorage.api.webhooks  # noqa: F401
from moorage.api import gc, immutable, members, projects, quotas, repositories, retention, robots, system, users  # noqa: F401
from moorage.api.base import ApiError, BadRequest, InternalError, MethodNotAllowed, NotFound, Unavailable, from_domain
from moorage.api.dispatch import EMPTY_JSON, endpoint
from moorage.api.openapi import document
from moorage.api.operations import OPERATIONS
from moorage.api.params import ParamError
from moorage.core.errors import DomainError
from moorage.settings import Settings

log = logging.getLogger("moorage.api")

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


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


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    response = exc.response()
    if request.method == "HEAD":
        return Response(status_code=response.status_code, headers={**exc.headers(), **EMPTY_JSON})
    return response


async def _param_error(request: Request, exc: Exception) -> Response:
    return await _api_error(request, BadRequest(str(exc)))


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return await _api_error(request, from_domain(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return await _api_error(request, NotFound(f"{request.url.path} is not an endpoint of this API"))
    if exc.status_code == 405:
        allowed = [m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()]
        return await _api_error(request, MethodNotAllowed(f"{request.method} is not supported on "
                                                          f"{request.url.path}", allowed))
    return await _api_error(request, InternalError(str(exc.detail)))


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    log.warning("metadata database unavailable during %s %s: %s", request.method, request.url.path,
                getattr(exc, "orig", exc))
    return Unavailable("the registry cannot reach its metadata database right now; retry shortly "
                       "(the registry's log names the cause)").response()


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return InternalError("internal error; the server logged the details").response()


def _dispatcher(handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> Callable[[Request],
                                                                                             Awaitable[Response]]:
    allowed = sorted(handlers)

    async def dispatch(request: Request) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            raise MethodNotAllowed(f"{request.method} is not supported on {request.url.path}; use "
                                   f"{', '.join(allowed)}", allowed)
        return await handler(request)
    return dispatch


def create_api(settings: Settings) -> Starlette:
    # Most specific first: repository names hold slashes, so ".../artifacts/x" must not match a repository;
    # and a literal segment before a parameter, so "/system/gc/schedule" is no gc_id.
    ordered = sorted(OPERATIONS, key=lambda op: (-op.path.count("/"), op.path.count("{")))
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for op in ordered:
        by_path.setdefault(op.path, {})[op.method] = endpoint(op)
    routes = [Route(path, _dispatcher(handlers), methods=_METHODS) for path, handlers in by_path.items()]
    spec = document(OPERATIONS)

    async def openapi(request: Request) -> Response:
        return JSONResponse(spec)

    routes.insert(0, Route("/openapi.json", _dispatcher({"GET": openapi}), methods=_METHODS))
    app = Starlette(routes=routes, exception_handlers={ApiError: _api_error, ParamError: _param_error,
                                                       DomainError: _domain_error,
                                                       HTTPException: _http_error,
                                                       sqlalchemy.exc.OperationalError: _database_unavailable,
                                                       Exception: _unexpected})
    assert isinstance(app.router, Router)
    app.router.redirect_slashes = False
    app.add_middleware(RequestIdMiddleware)
    return app
