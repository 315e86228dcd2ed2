"""Turn a table of (route, method -> handler) into endpoints that validate, authorize, then handle.

This is the single place a request passes through before any handler runs: the repository name is
checked against the grammar, the needed access is derived from the route and method, and the
authorizer decides. Handlers receive the principal and never re-decide access.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from moorage.core.reference import parse_name
from moorage.registry.access import required_access
from moorage.registry.authorizer import Principal
from moorage.registry.context import services
from moorage.registry.errors import API_VERSION_HEADER, Unsupported

Handler = Callable[[Request, Principal], Awaitable[Response]]


def endpoint(route: str, handlers: dict[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
    allowed = ", ".join(sorted(handlers))

    async def dispatch(request: Request) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            raise Unsupported(f"{request.method} is not supported on this endpoint; use {allowed}",
                              headers={"Allow": allowed})
        if "name" in request.path_params:
            parse_name(request.path_params["name"])
        principal = await services(request).authorizer.authorize(request, required_access(route, request))
        response = await handler(request, principal)
        response.headers.setdefault(*API_VERSION_HEADER)
        return response

    return dispatch


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def route(path: str, name: str, handlers: dict[str, Handler]) -> Route:
    # Starlette sees every method, so an unsupported one gets the spec's error body, not a bare 405.
    return Route(path, endpoint(name, handlers), methods=ALL_METHODS, name=name)
