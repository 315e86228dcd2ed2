"""The OpenAPI 3.1 document of ``/api/v2.0``, generated from the operations' declarations: their parameter
and body models, their return types, Harbor's operationIds (the handlers' names)."""

from __future__ import annotations

import re
import typing
from typing import Any

from pydantic import BaseModel
from starlette.responses import PlainTextResponse

import moorage
from moorage.api.models.common import Errors
from moorage.api.operations import Created, Operation, Page

_REF = "#/components/schemas/{model}"
_IN = {"path": "path", "query": "query", "headers": "header"}
_REQUEST_ID = {"description": "The request's id: the client's X-Request-Id, or a new one",
               "schema": {"type": "string"}}
_DESCRIPTIONS = {400: "Bad request: a parameter or the body is not what the operation takes",
                 401: "Unauthorized: log in (Basic authentication)", 403: "Forbidden", 404: "Not found",
                 409: "Conflict: it exists already", 412: "Precondition failed", 429: "Too many failed logins",
                 500: "Internal server error", 503: "The metadata database is unreachable"}
#: Statuses any operation may answer: a bad parameter, credentials refused or throttled, the database away.
_ALWAYS = (400, 401, 403, 429, 500, 503)


class _Schemas:
    """The ``components.schemas`` being collected: each model once, under its name."""

    def __init__(self) -> None:
        self.found: dict[str, Any] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        if model.__name__ not in self.found:
            schema = model.model_json_schema(ref_template=_REF)
            for name, sub in schema.pop("$defs", {}).items():
                self.found.setdefault(name, sub)
            self.found[model.__name__] = schema
        return {"$ref": _REF.format(model=model.__name__)}

    def of(self, annotation: Any) -> dict[str, Any]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.ref(annotation)
        if typing.get_origin(annotation) is list:
            return {"type": "array", "items": self.of(typing.get_args(annotation)[0])}
        raise TypeError(f"no schema for {annotation!r}")


def _parameters(model: type[BaseModel], where: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        description = prop.pop("description", None)
        parameter: dict[str, Any] = {"name": name, "in": _IN[where], "required": where == "path" or name in required,
                                     "schema": prop}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _success(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    returns = op.returns
    headers: dict[str, Any] = {"X-Request-Id": _REQUEST_ID}
    response: dict[str, Any] = {"description": "Success", "headers": headers}
    origin, args = typing.get_origin(returns), typing.get_args(returns)
    if returns is None or returns is type(None):
        return response
    if returns is PlainTextResponse:
        response["content"] = {"text/plain": {"schema": {"type": "string"}}}
    elif origin is Page:
        headers["X-Total-Count"] = {"description": "How many items all pages hold", "required": True,
                                    "schema": {"type": "integer", "minimum": 0}}
        headers["Link"] = {"description": 'The previous and next pages: <url>; rel="prev" , <url>; rel="next"',
                           "schema": {"type": "string"}}
        response["content"] = {"application/json": {"schema": {"type": "array", "items": schemas.of(args[0])}}}
    elif origin is Created or returns is Created:
        response["description"] = "Created"
        headers["Location"] = {"description": "Where the new resource is", "required": True,
                               "schema": {"type": "string"}}
        if args and args[0] is not type(None):
            response["content"] = {"application/json": {"schema": schemas.of(args[0])}}
    else:
        response["content"] = {"application/json": {"schema": schemas.of(returns)}}
    return response


def _errors(op: Operation) -> list[int]:
    codes = set(_ALWAYS) | set(op.errors)
    if "path" in op.inputs:
        codes.add(404)
    return sorted(codes)


def _operation(op: Operation, schemas: _Schemas, errors: dict[str, Any]) -> dict[str, Any]:
    parameters = [p for where, model in op.inputs.items() if where != "body" for p in _parameters(model, where)]
    parameters.append({"name": "X-Request-Id", "in": "header", "required": False,
                       "description": "An id for the request, echoed back; replaced by a new one when absent, "
                                      "longer than 128 characters or not printable",
                       "schema": {"type": "string"}})
    responses = {str(op.status): _success(op, schemas)}
    for code in _errors(op):
        responses[str(code)] = {"description": _DESCRIPTIONS[code], "headers": {"X-Request-Id": _REQUEST_ID},
                                "content": {"application/json": {"schema": errors}}}
    entry: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary, "tags": [op.tag],
                             "parameters": parameters, "responses": responses}
    if op.extension:
        entry["x-moorage-extension"] = True
    if "body" in op.inputs:
        entry["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": schemas.ref(op.inputs["body"])}}}
    if op.public:
        # Anonymous callers get what public projects show.
        entry["security"] = [{"basic": []}, {}]
    return entry


def document(operations: list[Operation]) -> dict[str, Any]:
    schemas = _Schemas()
    errors = schemas.ref(Errors)
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        path = re.sub(r"\{(\w+):path\}", r"{\1}", op.path)
        paths.setdefault(path, {})[op.method.lower()] = _operation(op, schemas, errors)
    return {
        "openapi": "3.1.0",
        "info": {"title": "moorage management API (Harbor API v2.0 compatible)", "version": moorage.__version__},
        "servers": [{"url": "/api/v2.0"}],
        "security": [{"basic": []}],
        "paths": paths,
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
                       "schemas": dict(sorted(schemas.found.items()))},
    }
