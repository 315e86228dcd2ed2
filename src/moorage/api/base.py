"""Plumbing shared by every management API operation: errors in Harbor's shape, the caller, bodies,
pagination (``page``, ``page_size``, ``X-Total-Count``, ``Link``), ``q`` filters and ``sort``.

Operations are declared with ``operation(...)``; the same declaration builds the route and the
OpenAPI document, so the document always describes what is served.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from moorage.auth import rbac
from moorage.auth.authenticate import LoginRefused, LoginThrottled
from moorage.auth.context import AuthContext
from moorage.auth.registry_authorizer import client_address, decode_basic
from moorage.core import jsondepth

M = TypeVar("M", bound=BaseModel)


# -- errors ------------------------------------------------------------------------------------------
class ApiError(Exception):
    """An error of the management API, rendered as Harbor's ``{"errors":[{"code","message"}]}``."""

    code: ClassVar[str] = "UNKNOWN"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def response(self) -> Response:
        return JSONResponse({"errors": [{"code": self.code, "message": self.message}]}, status_code=self.status)


class BadRequest(ApiError):
    code, status = "BAD_REQUEST", 400


class Unauthorized(ApiError):
    code, status = "UNAUTHORIZED", 401


class Forbidden(ApiError):
    code, status = "FORBIDDEN", 403


class NotFound(ApiError):
    code, status = "NOT_FOUND", 404


class MethodNotAllowed(ApiError):
    code, status = "METHOD_NOT_ALLOWED", 405


class Conflict(ApiError):
    code, status = "CONFLICT", 409


class PreconditionFailed(ApiError):
    code, status = "PRECONDITION", 412


class TooManyRequests(ApiError):
    code, status = "TOO_MANY_REQUEST", 429


class Unavailable(ApiError):
    code, status = "UNAVAILABLE", 503


class InternalError(ApiError):
    code, status = "UNKNOWN", 500


# -- the call ----------------------------------------------------------------------------------------
@dataclass
class Call:
    request: Request
    auth: AuthContext
    subject: rbac.Subject

    @property
    def params(self) -> dict[str, Any]:
        return self.request.path_params

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    async def body(self, model: type[M]) -> M:
        raw = await self.request.body()
        try:
            data = jsondepth.loads(raw or b"null")
        except jsondepth.TooDeeplyNested as exc:
            raise BadRequest(f"the request body nests arrays and objects deeper than {exc.max_depth} levels "
                             f"({model.__name__} needs far fewer)") from None
        except ValueError:
            raise BadRequest("the request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BadRequest(f"the request body must be a JSON object ({model.__name__})")
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
            raise BadRequest(f"invalid {model.__name__}: {problems}") from None

    def require(self, permitted: bool, what: str) -> None:
        """Refuse unless ``permitted``: 401 for anonymous callers (log in first), 403 otherwise."""
        if permitted:
            return
        if self.subject.anonymous:
            raise Unauthorized(f"authentication is required to {what}")
        raise Forbidden(f"{self.subject.name} is not allowed to {what}")

    def require_login(self) -> None:
        if self.subject.anonymous:
            raise Unauthorized("authentication is required")

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.auth.store.run(fn, *args, **kwargs)


async def resolve_subject(request: Request, auth: AuthContext) -> rbac.Subject:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return rbac.ANONYMOUS
    credentials = decode_basic(value)
    if credentials is None:
        raise Unauthorized("malformed Basic credentials")
    try:
        return await auth.authenticator.login(*credentials, client_address(request))
    except LoginRefused:
        raise Unauthorized("invalid username or password") from None
    except LoginThrottled:
        raise TooManyRequests("too many failed logins; wait a few minutes and try again") from None


# -- operations --------------------------------------------------------------------------------------
Handler = Callable[[Call], Awaitable[Response]]


@dataclass
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    operation_id: str
    body: type[BaseModel] | None = None
    response: str | None = None
    params: list[tuple[str, str, str]] = field(default_factory=list)  # (name, in, type)
    status: int = 200
    public: bool = False


OPERATIONS: list[Operation] = []

PAGED = [("page", "query", "integer"), ("page_size", "query", "integer"), ("q", "query", "string"),
         ("sort", "query", "string")]


def operation(method: str, path: str, summary: str, tag: str, *, body: type[BaseModel] | None = None,
              response: str | None = None, params: Iterable[tuple[str, str, str]] = (), status: int = 200,
              public: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        OPERATIONS.append(Operation(method, path, handler, summary, tag, handler.__name__, body, response,
                                    list(params), status, public))
        return handler
    return register


# -- representation ----------------------------------------------------------------------------------
def iso(ts: float | None) -> str:
    if ts is None:
        return "0001-01-01T00:00:00.000Z"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts % 1 * 1000):03d}Z"


def created(location: str, body: Any = None) -> Response:
    if body is None:
        return Response(status_code=201, headers={"Location": location})
    return JSONResponse(body, status_code=201, headers={"Location": location})


def ok() -> Response:
    return Response(status_code=200)


def int_param(value: str, name: str) -> int:
    if not re.fullmatch(r"-?\d{1,18}", value or ""):
        raise BadRequest(f"{name} must be an integer, not {value!r}")
    return int(value)


# -- q filters, sort, pagination ---------------------------------------------------------------------
@dataclass(frozen=True)
class Filter:
    key: str
    kind: str  # "exact", "fuzzy", "range", "union", "intersection"
    values: tuple[str, ...]


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_q(q: str | None) -> list[Filter]:
    """Harbor's ``q``: ``k=v``, ``k=~v``, ``k=[min~max]``, ``k={a b}``, ``k=(a b)``, joined by commas."""
    if not q:
        return []
    filters: list[Filter] = []
    for part in re.split(r",(?![^{(\[]*[})\]])", q):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BadRequest(f"invalid query {part!r}: expected key=value")
        if value.startswith("~"):
            filters.append(Filter(key, "fuzzy", (_unquote(value[1:]),)))
        elif value.startswith("[") and value.endswith("]") and "~" in value:
            low, high = value[1:-1].split("~", 1)
            filters.append(Filter(key, "range", (_unquote(low), _unquote(high))))
        elif value.startswith("{") and value.endswith("}"):
            filters.append(Filter(key, "union", tuple(_unquote(v) for v in value[1:-1].split())))
        elif value.startswith("(") and value.endswith(")"):
            filters.append(Filter(key, "intersection", tuple(_unquote(v) for v in value[1:-1].split())))
        else:
            filters.append(Filter(key, "exact", (_unquote(value),)))
    return filters


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _matches(item: dict[str, Any], f: Filter, aliases: dict[str, str]) -> bool:
    key = aliases.get(f.key, f.key)
    if key not in item:
        raise BadRequest(f"cannot filter by {f.key!r}")
    value = item[key]
    values = value if isinstance(value, list) else [value]
    texts = [_text(v) for v in values]
    if f.kind == "exact":
        return f.values[0] in texts
    if f.kind == "fuzzy":
        return any(f.values[0].lower() in t.lower() for t in texts)
    if f.kind == "union":
        return any(v in texts for v in f.values)
    if f.kind == "intersection":
        return all(v in texts for v in f.values)
    low, high = f.values
    for v in values:
        if isinstance(v, int | float) and not isinstance(v, bool):
            if (not low or v >= float(low)) and (not high or v <= float(high)):
                return True
        elif (not low or str(v) >= low) and (not high or str(v) <= high):
            return True
    return False


def apply_q(items: list[dict[str, Any]], q: str | None, aliases: dict[str, str] | None = None) -> list[dict[str, Any]]:
    filters = parse_q(q)
    aliases = aliases or {}
    return [item for item in items if all(_matches(item, f, aliases) for f in filters)]


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is None, "" if value is None else value)


def parse_sort(sort: str | None) -> list[tuple[str, bool]]:
    """Harbor's ``sort``: comma-separated keys, ``-`` before one for descending; (key, descending) pairs."""
    return [(key.lstrip("-"), key.startswith("-")) for key in (k.strip() for k in (sort or "").split(",")) if key]


def apply_sort(items: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
    for key, descending in reversed(parse_sort(sort)):
        if items and key not in items[0]:
            raise BadRequest(f"cannot sort by {key!r}")
        items = sorted(items, key=lambda item, k=key: _sort_key(item.get(k)), reverse=descending)
    return items


def page_args(call: Call) -> tuple[int, int]:
    raw_page, raw_size = call.query("page") or "1", call.query("page_size") or "10"
    page, size = int_param(raw_page, "page"), int_param(raw_size, "page_size")
    if page < 1:
        raise BadRequest("page must be 1 or more")
    if not 1 <= size <= 100:
        raise BadRequest("page_size must be between 1 and 100")
    return page, size


def paginate(call: Call, items: list[Any], render: Callable[[Any], Any] = lambda x: x) -> Response:
    """One page of ``items`` with ``X-Total-Count`` and Harbor's ``Link`` (``" , "``-separated)."""
    page, size = page_args(call)
    return page_response(call, len(items), [render(item) for item in items[(page - 1) * size: page * size]])


def page_response(call: Call, total: int, chosen: list[Any]) -> Response:
    """The page ``page_args`` named, already chosen (by the caller or its database), out of ``total``."""
    page, size = page_args(call)
    links = []
    others = [(k, v) for k, v in call.request.query_params.multi_items() if k not in ("page", "page_size")]
    path = call.request.url.path

    def link(number: int, rel: str) -> str:
        return f'<{path}?{urlencode([*others, ("page", number), ("page_size", size)])}>; rel="{rel}"'

    if page > 1:
        links.append(link(page - 1, "prev"))
    if page * size < total:
        links.append(link(page + 1, "next"))
    headers = {"X-Total-Count": str(total)}
    if links:
        headers["Link"] = " , ".join(links)
    return JSONResponse(chosen, headers=headers)


def listing(call: Call, items: list[dict[str, Any]], aliases: dict[str, str] | None = None,
            render: Callable[[Any], Any] = lambda x: x) -> Response:
    return paginate(call, apply_sort(apply_q(items, call.query("q"), aliases), call.query("sort")), render)
