"""A client's first request: the API version check, and what it gets for paths outside the API."""

from __future__ import annotations

import httpx

from tests.registry.conftest import assert_error


def test_version_check_answers_registry_2(client: httpx.Client) -> None:
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_unknown_paths_and_methods_get_spec_errors_not_500(client: httpx.Client) -> None:
    assert_error(client.get("/v2/library/x/unknown-endpoint"), 404, "UNSUPPORTED")
    assert_error(client.request("PATCH", "/v2/library/x/manifests/latest"), 405, "UNSUPPORTED")


def test_oversized_request_headers_are_refused_and_the_server_carries_on(client: httpx.Client) -> None:
    # A connection's reads are bounded (moorage.launch), so 2 MiB of headers is never buffered or served.
    try:
        status: int | None = client.get("/v2/", headers={"X-Padding": "x" * (2 * 1024 * 1024)}).status_code
    except httpx.TransportError:
        status = None  # refused by closing the connection
    assert status in (None, 400, 431), status
    assert client.get("/v2/").status_code == 200
