"""Paginated listings: ``/v2/<name>/tags/list`` and ``/v2/_catalog`` (``n``, ``last``, ``Link``)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from moorage.registry.authorizer import Principal
from moorage.registry.context import registry
from moorage.registry.errors import NameUnknown, PaginationInvalid

MAX_PAGE = 10_000


def _page_args(request: Request) -> tuple[int | None, str | None]:
    raw_n = request.query_params.get("n")
    n: int | None = None
    if raw_n is not None and raw_n != "":
        if not raw_n.isdigit():
            raise PaginationInvalid(f"n must be a non-negative integer, not {raw_n!r}")
        n = min(int(raw_n), MAX_PAGE)
    return n, request.query_params.get("last") or None


def _paged(request: Request, items: list[str], n: int | None, body: dict[str, object]) -> Response:
    headers = {}
    if n and len(items) == n:
        query = urlencode({"n": n, "last": items[-1]})
        headers["Link"] = f'<{request.url.path}?{query}>; rel="next"'
    return JSONResponse(body, headers=headers)


async def tags(request: Request, principal: Principal) -> Response:
    ctx = registry(request)
    repo = request.path_params["name"]
    n, last = _page_args(request)
    names = [] if n == 0 else await ctx.store.query(ctx.model.list_tags, repo, n, last)
    if names is None or (n == 0 and not await ctx.store.query(ctx.model.repository_exists, repo)):
        raise NameUnknown(f"repository {repo} does not exist", detail={"name": repo})
    return _paged(request, names, n, {"name": repo, "tags": names})


async def catalog(request: Request, principal: Principal) -> Response:
    ctx = registry(request)
    n, last = _page_args(request)
    names = [] if n == 0 else await ctx.store.query(ctx.model.list_repositories, n, last)
    return _paged(request, names, n, {"repositories": names})


TAGS_HANDLERS = {"GET": tags, "HEAD": tags}
CATALOG_HANDLERS = {"GET": catalog, "HEAD": catalog}
