"""A client's first request: the API version check, and what it gets for paths outside the API."""

from __future__ import annotations

import base64
import http.client
import json
import socket

import httpx

from tests.registry.conftest import OCI_MANIFEST, assert_error
from tests.support.moorage import ADMIN_PASSWORD, MoorageServer


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


def _authorization() -> str:
    return "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()


def test_an_error_answered_before_the_body_is_read_keeps_the_connection(moorage: MoorageServer, repo: str) -> None:
    """Found by the fuzzer: answered without reading the body (a bad reference, a manifest declared too large),
    the server dropped the kept-alive connection without saying so, and the client's next request on it met a
    closed connection instead of an answer."""
    connection = http.client.HTTPConnection(moorage.bind_host, moorage.port, timeout=30)
    headers = {"Authorization": _authorization(), "Content-Type": OCI_MANIFEST}
    try:
        for reference, size, status, code in (("bad:ref", 300_000, 400, "DIGEST_INVALID"),
                                              ("v1", 5 * 1024 * 1024, 413, "MANIFEST_INVALID"),
                                              ("bad:ref", 1000, 400, "DIGEST_INVALID")):
            connection.request("PUT", f"/v2/{repo}/manifests/{reference}", body=b"x" * size, headers=headers)
            answer = connection.getresponse()
            assert answer.status == status
            assert json.loads(answer.read())["errors"][0]["code"] == code
            assert answer.getheader("Connection") != "close"
    finally:
        connection.close()


def test_past_a_bound_the_unread_body_closes_the_connection_saying_so(moorage: MoorageServer, repo: str) -> None:
    # 9 MiB of a declared 20 MiB are sent, then the client waits: the registry reads 8 MiB of it, no more.
    head = (f"PUT /v2/{repo}/manifests/bad:ref HTTP/1.1\r\nHost: {moorage.host}\r\n"
            f"Authorization: {_authorization()}\r\nContent-Length: {20 * 1024 * 1024}\r\n\r\n").encode()
    with socket.create_connection((moorage.bind_host, moorage.port), timeout=30) as sock:
        sock.sendall(head + b"x" * (9 * 1024 * 1024))
        answer = b""
        while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"connection: close" in rest.lower(), answer[:300]
