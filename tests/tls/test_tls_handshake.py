"""A real TLS server (Granian, as moorage serves) verified by clients that trust only ca.crt.

Includes the seed's failure: a certificate with no IP SANs, as seen by Go clients (skopeo here,
the same crypto/x509 as docker 20.10, containerd 1.6 and the kubelet).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from moorage.tls.ca import create_ca, key_pem, load_ca, new_key
from moorage.tls.certs import ServerCertPaths, build_server_certificate, ensure_server_certificate
from tests.tls.tls_support import granian_tls, https_get, require_tool, run, tls_handshake

# The exact text Go's crypto/x509 produces; the seed saw it with 192.168.2.250 in place of 127.0.0.1.
GO_NO_IP_SANS = "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"


@pytest.fixture()
def issued(tmp_path: Path) -> ServerCertPaths:
    return ensure_server_certificate(tmp_path / "data", ["registry.example"], ["192.168.2.250"])


@pytest.fixture()
def cert_dir(tmp_path: Path, issued: ServerCertPaths) -> Path:
    """A docker/containers-style cert dir holding only the CA (what ``--cert-dir`` reads)."""
    directory = tmp_path / "certs"
    directory.mkdir()
    (directory / "ca.crt").write_bytes(issued.ca.read_bytes())
    return directory


def dns_only_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """The seed's certificate: right CA, DNS names only, no IP address."""
    ca = load_ca(tmp_path / "data")
    assert ca is not None
    key = new_key()
    leaf = build_server_certificate(ca, key, ["registry.example", "localhost"], [])
    cert, key_file = tmp_path / "dns-only.crt", tmp_path / "dns-only.key"
    cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca.pem)
    key_file.write_bytes(key_pem(key))
    return cert, key_file


def test_granian_serves_a_chain_python_verifies_by_ip_and_name(tmp_path: Path,
                                                                issued: ServerCertPaths) -> None:
    with granian_tls(tmp_path, issued.chain, issued.key, issued.ca) as port:
        for server_name in ("127.0.0.1", "localhost"):
            status, body = https_get(port, server_name, issued.ca)
            assert (status, body) == (200, b"{}")
            with tls_handshake(port, server_name, issued.ca) as conn:
                assert conn.version() == "TLSv1.3"  # Granian's default minimum
                assert len(conn.getpeercert(binary_form=False)["subjectAltName"]) >= 4
        # A client trusting some other CA must refuse the same server.
        stranger = tmp_path / "stranger-ca.crt"
        stranger.write_bytes(create_ca().pem)
        with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
            tls_handshake(port, "127.0.0.1", stranger)
        # And a name the certificate does not carry is refused too.
        with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
            tls_handshake(port, "192.168.2.251", issued.ca)


def test_openssl_client_verifies_the_served_chain(tmp_path: Path, issued: ServerCertPaths) -> None:
    openssl = require_tool("openssl")
    with granian_tls(tmp_path, issued.chain, issued.key, issued.ca) as port:
        result = run([openssl, "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(issued.ca),
                      "-verify_return_error", "-verify_ip", "127.0.0.1", "-brief"], timeout=30)
    output = result.stdout + result.stderr
    assert "Verification: OK" in output, output


def test_go_client_trusts_the_registry_certificate(tmp_path: Path, issued: ServerCertPaths,
                                                    cert_dir: Path) -> None:
    skopeo = require_tool("skopeo")
    with granian_tls(tmp_path, issued.chain, issued.key, issued.ca) as port:
        result = run([skopeo, "inspect", "--cert-dir", str(cert_dir), f"docker://127.0.0.1:{port}/x/y:z"])
    # TLS and /v2/ succeeded; the trivial app then has no such manifest.
    assert "x509" not in result.stderr, result.stderr
    assert "manifest unknown" in result.stderr, result.stderr


def test_certificate_without_ip_sans_reproduces_the_seed_failure(tmp_path: Path, issued: ServerCertPaths,
                                                                 cert_dir: Path) -> None:
    skopeo = require_tool("skopeo")
    cert, key = dns_only_certificate(tmp_path)
    with granian_tls(tmp_path, cert, key, issued.ca) as port:
        result = run([skopeo, "inspect", "--cert-dir", str(cert_dir), f"docker://127.0.0.1:{port}/x/y:z"])
        assert result.returncode != 0
        assert GO_NO_IP_SANS in result.stderr, result.stderr
        # The same certificate is fine by name: the CA is trusted, only the IP SAN is missing.
        status, _ = https_get(port, "localhost", issued.ca)
        assert status == 200
        with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
            tls_handshake(port, "127.0.0.1", issued.ca)
