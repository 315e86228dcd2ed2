"""A readable summary of a certificate: what it covers, who signed it, when it runs out."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from moorage.tls.certs import certificate_names


@dataclass(frozen=True)
class CertificateInfo:
    path: str
    subject: str
    issuer: str
    serial: str
    not_before: str
    not_after: str
    days_left: int
    dns_names: list[str]
    ip_addresses: list[str]
    sha256_fingerprint: str
    is_ca: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fingerprint(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def describe_certificate(cert: x509.Certificate, path: Path | None = None,
                         now: dt.datetime | None = None) -> CertificateInfo:
    now = now or dt.datetime.now(dt.UTC)
    dns, ips = certificate_names(cert)
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertificateInfo(
        path=str(path) if path else "",
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=f"{cert.serial_number:x}",
        not_before=cert.not_valid_before_utc.isoformat(),
        not_after=cert.not_valid_after_utc.isoformat(),
        days_left=(cert.not_valid_after_utc - now).days,
        dns_names=dns,
        ip_addresses=ips,
        sha256_fingerprint=_fingerprint(cert),
        is_ca=is_ca,
    )


def describe_file(path: Path) -> CertificateInfo:
    """Describe the first certificate in a PEM file (the leaf, for a chain file)."""
    return describe_certificate(x509.load_pem_x509_certificate(path.read_bytes()), path)
