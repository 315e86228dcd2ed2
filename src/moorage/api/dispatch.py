"""Runs one operation for one request: who is asking, the declared parameters and body validated into their
models (400 with what to fix otherwise), the handler, and its result written as Harbor writes it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from moorage.api.base import BadRequest, Call, explain, resolve_subject
from moorage.api.operations import Created, Operation, Page
from moorage.api.params import PageQuery, json_text_problem, text_problem
from moorage.core import jsondepth

_WHERE = {"path": "path parameter", "query": "query parameter", "headers": "header"}
#: Harbor's answers without a body still say they are JSON (its framework sets the type before the status).
EMPTY_JSON = {"Content-Type": "application/json"}


def _check_text(request: Request) -> None:
    """Refuse path and query values no database can look up (see ``moorage.api.params``)."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        problem = text_problem(value) if isinstance(value, str) else None
        if problem:
            raise BadRequest(f"the {name} parameter {problem}; send valid UTF-8 text without NUL")


def _given(model: type[BaseModel], source: Any) -> dict[str, Any]:
    """The values ``source`` (query string or headers) holds for the fields of ``model``."""
    given = {}
    for name, info in model.model_fields.items():
        key = info.alias or name
        value = source.get(key)
        if value is not None:
            given[key] = value
    return given


async def _body(request: Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.body()
    try:
        data = jsondepth.loads(raw or b"null")
    except jsondepth.TooDeeplyNested as exc:
        raise BadRequest(f"the request body nests arrays and objects deeper than {exc.max_depth} levels "
                         f"({model.__name__} needs far fewer)") from None
    except ValueError:
        raise BadRequest(f"the request body is not valid JSON (send a {model.__name__} object)") from None
    if not isinstance(data, dict):
        raise BadRequest(f"the request body must be a JSON object ({model.__name__})")
    problem = json_text_problem(data)
    if problem:
        raise BadRequest(f"invalid {model.__name__}: {problem}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(f"invalid {model.__name__}: {explain(exc, 'body')}") from None


async def _inputs(op: Operation, request: Request) -> dict[str, BaseModel]:
    inputs: dict[str, BaseModel] = {}
    for where, model in op.inputs.items():
        if where == "body":
            inputs[where] = await _body(request, model)
            continue
        source = {"path": request.path_params, "query": request.query_params, "headers": request.headers}[where]
        try:
            inputs[where] = model.model_validate(dict(source) if where == "path" else _given(model, source))
        except ValidationError as exc:
            raise BadRequest(explain(exc, _WHERE[where])) from None
    return inputs


def _links(request: Request, query: PageQuery, total: int) -> str:
    """Harbor's ``Link``: ``<url>; rel="prev" , <url>; rel="next"`` (``" , "``-separated)."""
    others = [(k, v) for k, v in request.query_params.multi_items() if k not in ("page", "page_size")]
    path = request.url.path

    def link(number: int, rel: str) -> str:
        return f'<{path}?{urlencode([*others, ("page", number), ("page_size", query.page_size)])}>; rel="{rel}"'

    links = []
    if query.page > 1:
        links.append(link(query.page - 1, "prev"))
    if query.page * query.page_size < total:
        links.append(link(query.page + 1, "next"))
    return " , ".join(links)


def _json(value: Any) -> Any:
    return value.harbor() if hasattr(value, "harbor") else value


def render(op: Operation, request: Request, inputs: dict[str, BaseModel], result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status_code=op.status, headers=EMPTY_JSON)
    if isinstance(result, Created):
        headers = {"Location": result.location}
        if result.body is None:
            return Response(status_code=201, headers={**headers, **EMPTY_JSON})
        return JSONResponse(_json(result.body), status_code=201, headers=headers)
    if isinstance(result, Page):
        query = inputs.get("query")
        assert isinstance(query, PageQuery), f"{op.operation_id} pages without page and page_size"
        headers = {"X-Total-Count": str(result.total)}
        links = _links(request, query, result.total)
        if links:
            headers["Link"] = links
        return JSONResponse([_json(item) for item in result.items], headers=headers)
    if isinstance(result, list):
        return JSONResponse([_json(item) for item in result], status_code=op.status)
    return JSONResponse(_json(result), status_code=op.status)


def endpoint(op: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        _check_text(request)
        auth = request.app.state.auth
        subject = await resolve_subject(request, auth)
        inputs = await _inputs(op, request)
        result = await op.handler(Call(request, auth, subject), **inputs)
        return render(op, request, inputs, result)
    return run
