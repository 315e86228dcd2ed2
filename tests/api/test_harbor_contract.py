"""Harbor's API description, and moorage's own, run against moorage by Schemathesis (examples, coverage and
fuzzing phases, as the admin): no 5xx, no response that breaks its schema.

Harbor's swagger is cut down to the operations moorage implements (moorage's own document names them, with
Harbor's operationIds). What cannot be held against it, and why, is listed where it is left out.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.contract import Outcome, World, run
from tests.api.harbor import api, harbor_swagger
from tests.support.moorage import MoorageServer

#: Enough for the fuzzing phase to vary every parameter; the coverage phase adds its own cases on top.
MAX_EXAMPLES = 4
#: For Harbor's document. Not status_code_conformance: Harbor's swagger leaves out statuses Harbor itself
#: answers (getProject lists no 403 and no 404; listProjects no 400, though a page_size of 0 gets one).
HARBOR_CHECKS = ["not_a_server_error", "response_schema_conformance", "content_type_conformance"]
#: moorage's own document declares every status and header it answers with, so it is held to all of it.
OWN_CHECKS = ["not_a_server_error", "response_schema_conformance", "content_type_conformance",
              "status_code_conformance", "response_headers_conformance", "unsupported_method",
              "missing_required_header", "negative_data_rejection"]


_WORLDS: dict[str, tuple[World, dict[str, Any]]] = {}


def _world(server: MoorageServer) -> tuple[MoorageServer, World, dict[str, Any]]:
    """The server, what exists on it for the fuzzer to name (made once per server), and its OpenAPI document."""
    if server.url not in _WORLDS:
        with api(server) as admin:
            _WORLDS[server.url] = (World.make(server, admin), admin.get("/openapi.json").json())
    made, own = _WORLDS[server.url]
    return server, made, own


@pytest.fixture
def world(moorage: MoorageServer) -> tuple[MoorageServer, World, dict[str, Any]]:
    return _world(moorage)


@pytest.fixture
def world_on_sqlite(moorage_on_sqlite: MoorageServer) -> tuple[MoorageServer, World, dict[str, Any]]:
    return _world(moorage_on_sqlite)


def _implemented(own: dict[str, Any]) -> set[str]:
    return {op["operationId"] for item in own["paths"].values() for op in item.values()
            if isinstance(op, dict) and "operationId" in op and not op.get("x-moorage-extension")}


def harbor_contract(own: dict[str, Any]) -> dict[str, Any]:
    """Harbor's swagger with only the operations moorage implements."""
    document = harbor_swagger()
    implemented = _implemented(own)
    paths: dict[str, Any] = {}
    for path, item in document["paths"].items():
        kept = {method: op for method, op in item.items()
                if isinstance(op, dict) and op.get("operationId") in implemented}
        if kept:
            paths[path] = {**{k: v for k, v in item.items() if not isinstance(v, dict)}, **kept}
    served = sum(len(item) for item in paths.values())
    assert served == len(implemented), "an operationId moorage serves is not Harbor's"
    document["paths"] = paths
    # Operations that produce text (a log, a certificate) declare only that type for every response, yet Harbor
    # answers their errors as it answers every error: {"errors": [...]} in JSON. So JSON is allowed beside it.
    for item in paths.values():
        for op in item.values():
            if isinstance(op, dict) and "produces" in op and "application/json" not in op["produces"]:
                op["produces"] = [*op["produces"], "application/json"]
    # ExtraAttrs types every value as an object, yet Harbor itself fills it with strings (architecture, os,
    # created, author) beside the one object (config): no server, Harbor included, can answer to that schema.
    document["definitions"]["ExtraAttrs"]["additionalProperties"] = {}
    return document


def _report(what: str, outcome: Outcome) -> None:
    print(f"\n{what}: {outcome.cases} cases, {len(outcome.failures)} failures")
    assert outcome.cases > 500, f"{what}: too few cases ran ({outcome.cases})"
    assert not outcome.failures, "\n".join(outcome.failures[:25])


def test_harbors_own_api_description_holds(world: tuple[MoorageServer, World, dict[str, Any]]) -> None:
    server, made, own = world
    _report("Harbor's swagger", run(harbor_contract(own), server, made, checks=HARBOR_CHECKS,
                                    max_examples=MAX_EXAMPLES))


def test_moorages_own_openapi_document_holds(world_on_sqlite: tuple[MoorageServer, World, dict[str, Any]]) -> None:
    """On one database: the document is the same whatever the store (Harbor's contract runs on both, above, and
    catches what differs between them), and a second run would double this module's time."""
    server, made, own = world_on_sqlite
    _report("moorage's OpenAPI", run(own, server, made, checks=OWN_CHECKS, max_examples=MAX_EXAMPLES))
