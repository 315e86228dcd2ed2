"""``GET /api/v2.0/systeminfo/getcert``: the registry's CA, for nodes to fetch and pin by fingerprint
(``moorage node-config --ca-fingerprint``), and ``has_ca_root`` in ``/systeminfo`` telling the truth."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from moorage.node.ca_pin import pem_fingerprint
from tests.support.moorage import MoorageServer
from tests.support.procs import running


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[MoorageServer]:
    yield from running(lambda: MoorageServer(tmp_path / "registry", workers=1, tls=True))


def test_an_https_registry_hands_out_its_ca_to_anyone(tls_server: MoorageServer) -> None:
    with httpx.Client(base_url=f"{tls_server.url}/api/v2.0", verify=tls_server.verify, timeout=30) as anonymous:
        got = anonymous.get("/systeminfo/getcert")
        info = anonymous.get("/systeminfo").json()
    assert got.status_code == 200
    assert got.content == tls_server.ca_file.read_bytes()
    assert got.headers["content-disposition"] == 'attachment; filename="ca.crt"'
    assert x509.load_pem_x509_certificate(got.content).extensions.get_extension_for_class(
        x509.BasicConstraints).value.ca
    assert info["has_ca_root"] is True
    assert f"CA fingerprint {pem_fingerprint(got.content)}" in tls_server.log(), "serve prints what nodes pin"


def test_a_plain_http_registry_has_no_ca_to_hand_out(moorage: MoorageServer) -> None:
    with httpx.Client(base_url=f"{moorage.url}/api/v2.0", timeout=30) as anonymous:
        got = anonymous.get("/systeminfo/getcert")
        info = anonymous.get("/systeminfo").json()
    assert got.status_code == 404
    assert got.json()["errors"][0]["code"] == "NOT_FOUND" and "plain HTTP" in got.json()["errors"][0]["message"]
    assert info["has_ca_root"] is False
