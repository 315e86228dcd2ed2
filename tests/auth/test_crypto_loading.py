"""The token crypto (cryptography, PyJWT) is loaded by the first process that signs or checks a token,
so workers of a registry running without authentication never carry it (~12 MB each)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.moorage import ADMIN_PASSWORD, MoorageServer

CRYPTO_LIBRARY = "cryptography/hazmat/bindings/_rust"


@pytest.fixture
def open_registry(tmp_path: Path) -> Iterator[MoorageServer]:
    server = MoorageServer(tmp_path / "data", env={"MOORAGE_AUTH_ENABLED": "false"})
    server.start()
    yield server
    server.stop()


def test_a_registry_without_authentication_serves_pushes_and_pulls_without_the_token_crypto(
        open_registry: MoorageServer) -> None:
    blob = b"layer bytes " * 1000
    digest = f"sha256:{hashlib.sha256(blob).hexdigest()}"
    with httpx.Client(base_url=open_registry.url, timeout=30) as client:
        assert client.get("/v2/").status_code == 200
        pushed = client.post("/v2/open/app/blobs/uploads/", params={"digest": digest}, content=blob)
        assert pushed.status_code == 201, pushed.text
    for _ in range(4):  # a connection each, so that both workers are likely to serve some
        assert httpx.get(f"{open_registry.url}/v2/open/app/blobs/{digest}", timeout=30).content == blob
    # The supervisor and both workers are seen (each maps Granian), and none of them maps the crypto.
    assert len(open_registry.processes_mapping("granian/_granian")) == 3
    assert open_registry.processes_mapping(CRYPTO_LIBRARY) == []


def test_the_first_token_loads_it(moorage: MoorageServer) -> None:
    issued = httpx.get(f"{moorage.url}/service/token", params={"service": "moorage-registry"},
                       auth=("admin", ADMIN_PASSWORD), timeout=30)
    assert issued.status_code == 200, issued.text
    assert moorage.processes_mapping(CRYPTO_LIBRARY)
