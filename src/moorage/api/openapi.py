"""The OpenAPI 3 document of ``/api/v2.0``, built from the same declarations that build the routes."""

from __future__ import annotations

import re
from typing import Any

import moorage
from moorage.api.base import Operation

_TYPES = {"integer": {"type": "integer"}, "string": {"type": "string"}, "boolean": {"type": "boolean"}}
_ERRORS = {"$ref": "#/components/schemas/Errors"}


def _schema_ref(name: str) -> dict[str, Any]:
    if name.endswith("[]"):
        return {"type": "array", "items": {"$ref": f"#/components/schemas/{name[:-2]}"}}
    return {"$ref": f"#/components/schemas/{name}"}


def document(operations: list[Operation]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {
        "Errors": {"type": "object", "properties": {"errors": {"type": "array", "items": {
            "type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}},
    }
    for op in operations:
        path = re.sub(r"\{(\w+):path\}", r"{\1}", op.path)
        entry: dict[str, Any] = {
            "operationId": op.operation_id, "summary": op.summary, "tags": [op.tag],
            "parameters": [{"name": n, "in": where, "required": where == "path", "schema": _TYPES[t]}
                           for n, where, t in op.params]
            + [{"name": "X-Request-Id", "in": "header", "required": False, "schema": {"type": "string"}}],
            "responses": {str(op.status): {"description": "Success"},
                          **{code: {"description": text, "content": {"application/json": {"schema": _ERRORS}}}
                             for code, text in (("400", "Bad request"), ("401", "Unauthorized"),
                                                ("403", "Forbidden"), ("404", "Not found"),
                                                ("500", "Internal server error"))}},
        }
        if op.public:
            entry["security"] = [{"basic": []}, {}]
        if op.response:
            schemas.setdefault(op.response.rstrip("[]"), {"type": "object"})
            entry["responses"][str(op.status)]["content"] = {"application/json": {"schema": _schema_ref(op.response)}}
        if op.body is not None:
            schemas[op.body.__name__] = op.body.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in schemas[op.body.__name__].pop("$defs", {}).items():
                schemas.setdefault(name, sub)
            entry["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{op.body.__name__}"}}}}
        paths.setdefault(path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.0.3",
        "info": {"title": "moorage management API (Harbor API v2.0 compatible)", "version": moorage.__version__},
        "servers": [{"url": "/api/v2.0"}],
        "security": [{"basic": []}],
        "paths": paths,
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}, "schemas": schemas},
    }
