"""TLS 1.3 preferred, TLS 1.2 offered (AEAD ciphers with ECDHE only) for older nodes and proxies, as a setting."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.moorage import MoorageServer


def handshake(server: MoorageServer, maximum: ssl.TLSVersion, ciphers: str | None = None) -> tuple[str, str]:
    """(protocol, cipher) a client limited to ``maximum`` (and ``ciphers`` for TLS 1.2) negotiates."""
    context = ssl.create_default_context(cafile=str(server.ca_file))
    context.maximum_version = maximum
    if ciphers:
        context.set_ciphers(ciphers)
    with socket.create_connection((server.bind_host, server.port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname=server.bind_host) as conn:
        version, cipher = conn.version(), conn.cipher()
        assert version is not None and cipher is not None
        return version, cipher[0]


@pytest.fixture(scope="module", params=[True, False], ids=["tls12-on", "tls12-off"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MoorageServer]:
    env = {} if request.param else {"MOORAGE_TLS12": "false"}
    server = MoorageServer(Path(tmp_path_factory.mktemp("tls-versions")), workers=1, tls=True, env=env)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_tls13_is_preferred(server: MoorageServer) -> None:
    assert handshake(server, ssl.TLSVersion.TLSv1_3)[0] == "TLSv1.3"


def test_tls12_with_aead_only_unless_turned_off(server: MoorageServer) -> None:
    if server.env.get("MOORAGE_TLS12") == "false":
        with pytest.raises(ssl.SSLError):
            handshake(server, ssl.TLSVersion.TLSv1_2)
        return
    version, cipher = handshake(server, ssl.TLSVersion.TLSv1_2)
    assert version == "TLSv1.2"
    assert cipher.startswith("ECDHE-") and ("GCM" in cipher or "CHACHA20" in cipher), cipher
    # A client that offers only CBC or static-RSA suites finds nothing to agree on.
    with pytest.raises(ssl.SSLError):
        handshake(server, ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES128-SHA256:AES128-SHA:"
                                                  "AES256-GCM-SHA384")
