"""Paginated listings: ``/v2/<name>/tags/list`` and ``/v2/_catalog`` (``n``, ``last``, ``Link``)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from moorage.core.tags import page_size
from moorage.registry.authorizer import Principal
from moorage.registry.context import services


def _paged(request: Request, items: list[str], n: int | None, body: dict[str, object]) -> Response:
    headers = {}
    if n and len(items) == n:
        query = urlencode({"n": n, "last": items[-1]})
        headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
    return JSONResponse(body, headers=headers)


async def tags(request: Request, principal: Principal) -> Response:
    repo = request.path_params["name"]
    n = page_size(request.query_params.get("n"))
    names = await services(request).tags.of_repository(repo, n, request.query_params.get("last") or None)
    return _paged(request, names, n, {"name": repo, "tags": names})


async def catalog(request: Request, principal: Principal) -> Response:
    n = page_size(request.query_params.get("n"))
    names = await services(request).tags.catalog(n, request.query_params.get("last") or None)
    return _paged(request, names, n, {"repositories": names})


TAGS_HANDLERS = {"GET": tags, "HEAD": tags}
CATALOG_HANDLERS = {"GET": catalog, "HEAD": catalog}
