"""The served OpenAPI document: Harbor's operationIds, real schemas built from the models, paging headers
declared on every list, and every reference resolving."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.harbor import api, harbor_swagger
from tests.support.moorage import MoorageServer

#: Operations moorage adds to Harbor's API.
EXTENSIONS = {("post", "/node-credentials")}


@pytest.fixture(scope="module")
def spec(moorage_on_sqlite: MoorageServer) -> dict[str, Any]:
    with api(moorage_on_sqlite, auth=None) as anonymous:
        response = anonymous.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): op for path, item in document["paths"].items() for method, op in item.items()
            if method in ("get", "head", "post", "put", "patch", "delete")}


def test_operation_ids_are_harbors(spec: dict[str, Any]) -> None:
    harbor = _operations(harbor_swagger())
    ours = _operations(spec)
    assert len(ours) >= 45
    for key, op in ours.items():
        if key in EXTENSIONS:
            assert op.get("x-moorage-extension") is True
            continue
        assert key in harbor, f"{key} is not an operation of Harbor's API"
        assert op["operationId"] == harbor[key]["operationId"], key


def test_schemas_are_real_and_every_reference_resolves(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for name in ("Project", "ProjectReq", "Repository", "Artifact", "Tag", "Reference", "Platform",
                 "ProjectMemberEntity", "UserResp", "Robot", "RobotCreated", "AuditLog", "Search", "Statistic",
                 "GeneralInfo", "OverallHealthStatus", "Errors"):
        assert schemas[name]["type"] == "object" and schemas[name]["properties"], name
    assert set(schemas["Reference"]["properties"]) == {"parent_id", "child_id", "child_digest", "platform",
                                                       "annotations", "urls"}
    assert {"os.version", "variant"} <= set(schemas["Platform"]["properties"])

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if ref:
                assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
            # A bare object says nothing of what is in it.
            assert node != {"type": "object"}, node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)


def test_lists_declare_their_paging_headers_and_ids_their_bounds(spec: dict[str, Any]) -> None:
    for (method, path), op in _operations(spec).items():
        success = op["responses"].get("200") or op["responses"].get("201")
        schema = success.get("content", {}).get("application/json", {}).get("schema", {})
        names = {p["name"] for p in op["parameters"]}
        if schema.get("type") == "array":
            assert {"X-Total-Count", "Link"} <= set(success["headers"]), (method, path)
            assert {"page", "page_size"} <= names, (method, path)
        for parameter in op["parameters"]:
            if parameter["name"] in ("robot_id", "user_id", "mid"):
                assert parameter["schema"]["minimum"] == 1 and parameter["schema"]["maximum"] == 2**63 - 1
            if parameter["name"] == "page_size":
                assert parameter["schema"]["maximum"] == 100
        assert "X-Request-Id" in names and "X-Request-Id" in success["headers"]
    created = _operations(spec)[("post", "/robots")]["responses"]["201"]
    assert created["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RobotCreated"}
    assert "Location" in created["headers"]
