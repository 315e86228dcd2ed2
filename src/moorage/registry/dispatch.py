"""Turn a table of (route, method -> handler) into endpoints that validate, authorize, then handle.

This is the single place a request passes through before any handler runs: the repository name is
checked against the grammar, the needed access is derived from the route and method, and the
authorizer decides. Handlers receive the principal and never re-decide access.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive

from moorage.core.errors import DomainError, QuotaExceeded
from moorage.core.reference import parse_name
from moorage.meta import outbox
from moorage.registry.access import required_access
from moorage.registry.authorizer import Principal
from moorage.registry.context import services
from moorage.registry.errors import API_VERSION_HEADER, Unsupported, render

Handler = Callable[[Request, Principal], Awaitable[Response]]

log = logging.getLogger("moorage.registry")

# An error answered before the request's body was read leaves the rest of the body on the connection: the
# server then drops the connection without announcing it, and a client reusing it meets a dropped connection
# instead of its next answer. So, as Go's server does, the rest is read and discarded up to this much (any
# manifest, a usual chunk); beyond that the answer says ``Connection: close``.
_DRAIN_LIMIT = 8 * 1024 * 1024


class _Receive:
    """The request's ``receive``, noting when the body has been read to its end."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.body_read = False

    async def __call__(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_read = True
        return message

    async def drain(self) -> bool:
        """Read and discard what is left of the body, up to the limit; whether all of it was."""
        left = _DRAIN_LIMIT
        while not self.body_read and left >= 0:
            left -= len((await self()).get("body", b""))
        return self.body_read


def _has_body(request: Request) -> bool:
    return request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers


def endpoint(route: str, handlers: Mapping[str, Handler]) -> Callable[[Request], Awaitable[Response]]:
    allowed = ", ".join(sorted(handlers))

    async def dispatch(request: Request) -> Response:
        receive = _Receive(request.receive)
        request = Request(request.scope, receive)
        try:
            return await _handle(request)
        except DomainError as error:
            if not _has_body(request) or await receive.drain():
                raise
            response = render(error, head=request.method == "HEAD")
            response.headers["Connection"] = "close"
            return response

    async def _handle(request: Request) -> Response:
        handler = handlers.get(request.method)
        if handler is None:
            raise Unsupported(f"{request.method} is not supported on this endpoint; use {allowed}",
                              headers={"Allow": allowed})
        if "name" in request.path_params:
            parse_name(request.path_params["name"])
        principal = await services(request).authorizer.authorize(request, required_access(route, request))
        try:
            response = await handler(request, principal)
        except QuotaExceeded as refused:
            # A manifest's refusal is told by the manifest service, with the manifest's digest.
            if route != "manifest":
                await _tell_quota_exceeded(request, principal, refused)
            raise
        response.headers.setdefault(*API_VERSION_HEADER)
        return response

    return dispatch


async def _tell_quota_exceeded(request: Request, principal: Principal, refused: QuotaExceeded) -> None:
    """A blob the project's quota refused, as a QUOTA_EXCEED webhook event (in a transaction of its own: the
    refusal wrote nothing)."""
    detail = refused.detail or {}
    digest = request.query_params.get("digest") or request.query_params.get("mount") or ""
    event = outbox.quota_exceeded(request.path_params["name"], digest, principal.name, int(detail.get("adding", 0)),
                                  int(detail.get("used", 0)), int(detail.get("limit", 0)))
    store = services(request).store
    try:
        await store.run(outbox.record_alone, store, [event])
    except Exception as exc:  # the client's answer is the refusal, whatever happens to its event
        log.warning("could not record a QUOTA_EXCEED event: %s", getattr(exc, "orig", None) or exc)


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def route(path: str, name: str, handlers: Mapping[str, Handler]) -> Route:
    # Starlette sees every method, so an unsupported one gets the spec's error body, not a bare 405.
    compiled = Route(path, endpoint(name, handlers), methods=ALL_METHODS, name=name)
    # Starlette ends the pattern with "$", which also matches before a final newline: ".../blobs/uploads/%0A"
    # was the start-upload route (405 for GET) instead of an unknown session.
    pattern = compiled.path_regex.pattern
    compiled.path_regex = re.compile(pattern.removesuffix("$") + r"\Z", compiled.path_regex.flags)
    return compiled
