"""The registry's own certificate authority.

Key type: ECDSA P-256. Every client in the scenario accepts it (Go's crypto/x509 — docker 20.10,
containerd 1.6, kubelet, skopeo, CRI-O — OpenSSL, rustls inside Granian) and it is far cheaper than
RSA to generate on first start. Validity: 10 years, so node trust set up once does not silently
expire; the server certificate it signs lives 1 year and is renewed under the same CA.
"""

from __future__ import annotations

import datetime as dt
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from moorage.tls.files import atomic_write

CA_VALIDITY = dt.timedelta(days=3650)
# Nodes' clocks drift; a certificate that is "not yet valid" on a node is as broken as an expired one.
CLOCK_SKEW = dt.timedelta(hours=1)
CA_CERT_NAME = "ca.crt"
CA_KEY_NAME = "ca.key"


@dataclass(frozen=True)
class CertificateAuthority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def tls_dir(data_dir: Path) -> Path:
    return data_dir / "tls"


def random_serial() -> int:
    # RFC 5280: positive, at most 20 octets; 159 random bits stay within that.
    return secrets.randbits(159) | 1


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    # PKCS#8 unencrypted: the one format Granian (rustls), Go's tls.LoadX509KeyPair and OpenSSL all load.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def create_ca(now: dt.datetime | None = None) -> CertificateAuthority:
    """A fresh self-signed CA, its name unique so several moorage CAs can sit in one trust store."""
    now = now or dt.datetime.now(dt.UTC)
    key = new_key()
    # A unique subject keeps path building unambiguous when a node trusts more than one moorage CA.
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "moorage"),
        x509.NameAttribute(NameOID.COMMON_NAME,
                           f"moorage registry CA {socket.gethostname()[:24]} {secrets.token_hex(4)}"),
    ])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(random_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(cert=cert, key=key)


def load_ca(data_dir: Path) -> CertificateAuthority | None:
    """The CA stored under ``<data_dir>/tls``, or ``None`` if there is none yet."""
    directory = tls_dir(data_dir)
    cert_path, key_path = directory / CA_CERT_NAME, directory / CA_KEY_NAME
    if not (cert_path.is_file() and key_path.is_file()):
        return None
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} is not an ECDSA key")
    if key.public_key().public_numbers() != cert.public_key().public_numbers():  # type: ignore[union-attr]
        raise ValueError(f"{key_path} does not belong to {cert_path}")
    return CertificateAuthority(cert=cert, key=key)


def store_ca(data_dir: Path, ca: CertificateAuthority) -> None:
    """Write the CA; the key first, so a reader that sees the certificate finds its key too."""
    directory = tls_dir(data_dir)
    atomic_write(directory / CA_KEY_NAME, key_pem(ca.key), mode=0o600)
    atomic_write(directory / CA_CERT_NAME, ca.pem, mode=0o600)
