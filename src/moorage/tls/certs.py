"""The server certificate: signed by the moorage CA, naming every address the registry is reached by.

Files under ``<data_dir>/tls``:

- ``ca.crt`` / ``ca.key`` — the CA (see :mod:`moorage.tls.ca`); ``ca.crt`` is what nodes trust.
- ``server.crt`` — the leaf certificate alone (what ``openssl verify`` and ``tls show`` look at).
- ``server.key`` — its ECDSA P-256 key, PKCS#8, mode 0600.
- ``server-chain.crt`` — leaf followed by the CA: the file the server serves, so a client that was
  handed only the CA's fingerprint can still see the whole path.

The server certificate is valid for 1 year (365 days) and reissued automatically by
:func:`ensure_server_certificate` once fewer than 30 days are left, when the CA changed, or when a
name or address it must cover is missing. Go ignores the subject CN when checking a host name, so
SANs carry every name; the CN is only there for humans.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from moorage.tls.addresses import LOOPBACK_IPS, LOOPBACK_NAMES, local_hostnames, local_ip_addresses
from moorage.tls.ca import (
    CLOCK_SKEW,
    CertificateAuthority,
    create_ca,
    key_pem,
    load_ca,
    new_key,
    random_serial,
    store_ca,
    tls_dir,
)
from moorage.tls.files import atomic_write, directory_lock
from moorage.tls.names import split_names

SERVER_VALIDITY = dt.timedelta(days=365)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class ServerCertPaths:
    """Where the server's TLS material lives. Serve ``chain`` + ``key``; hand ``ca`` to nodes."""

    chain: Path
    key: Path
    ca: Path
    cert: Path


def server_paths(data_dir: Path) -> ServerCertPaths:
    directory = tls_dir(data_dir)
    return ServerCertPaths(chain=directory / "server-chain.crt", key=directory / "server.key",
                           ca=directory / "ca.crt", cert=directory / "server.crt")


def certificate_names(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    """The DNS names and IP addresses in a certificate's SAN extension (empty lists if it has none)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    dns = [str(n) for n in san.get_values_for_type(x509.DNSName)]
    ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return dns, ips


def wanted_names(hostnames: list[str], ips: list[str], *, include_local: bool = True
                 ) -> tuple[list[str], list[str]]:
    """The operator's names first, then ``localhost``/loopback and (optionally) this host's own."""
    dns, addresses = split_names(hostnames, ips)
    extra_dns = local_hostnames() if include_local else list(LOOPBACK_NAMES)
    extra_ips = local_ip_addresses() if include_local else list(LOOPBACK_IPS)
    return list(dict.fromkeys([*dns, *extra_dns])), list(dict.fromkeys([*addresses, *extra_ips]))


def build_server_certificate(ca: CertificateAuthority, key: ec.EllipticCurvePrivateKey,
                             dns: list[str], ips: list[str], now: dt.datetime | None = None
                             ) -> x509.Certificate:
    """Sign a TLS server certificate for exactly these SANs (callers decide which; tests use this to
    produce the seed's broken certificate, one without IP SANs)."""
    now = now or dt.datetime.now(dt.UTC)
    common_name = (dns or ips or ["moorage"])[0][:64]
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "moorage"),
                                 x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(random_serial())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(min(now + SERVER_VALIDITY, ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # ECDSA keys sign the handshake; key encipherment is an RSA-only usage.
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_chain(paths: ServerCertPaths) -> Path:
    """(Re)write the served file: the leaf in ``paths.cert`` followed by the CA in ``paths.ca``."""
    atomic_write(paths.chain, paths.cert.read_bytes().rstrip(b"\n") + b"\n" + paths.ca.read_bytes())
    return paths.chain


def _load_or_create_ca(data_dir: Path) -> CertificateAuthority:
    ca = load_ca(data_dir)
    if ca is None:
        ca = create_ca()
        store_ca(data_dir, ca)
    return ca


def _current_leaf(paths: ServerCertPaths, ca: CertificateAuthority) -> x509.Certificate | None:
    """The stored leaf if it is usable with this CA and its key, else ``None``."""
    try:
        cert = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        key = serialization.load_pem_private_key(paths.key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if cert.public_key().public_numbers() != key.public_key().public_numbers():  # type: ignore[union-attr]
        return None
    try:
        cert.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        return None
    return cert


def _store_leaf(paths: ServerCertPaths, ca: CertificateAuthority, dns: list[str], ips: list[str]
                ) -> None:
    key = new_key()
    cert = build_server_certificate(ca, key, dns, ips)
    # Key first: a reader that sees the new certificate must find the matching key.
    atomic_write(paths.key, key_pem(key), mode=0o600)
    atomic_write(paths.cert, _pem(cert))
    write_chain(paths)


def ensure_server_certificate(data_dir: Path, hostnames: list[str], ips: list[str], *,
                              include_local: bool = True) -> ServerCertPaths:
    """Make sure a CA and a current server certificate covering these names exist; return the paths.

    Creates the CA on first use. Reissues the server certificate (keeping every SAN it already had)
    when it is missing, not from this CA, within 30 days of expiry, or lacks one of ``hostnames``,
    ``ips``, ``localhost``, 127.0.0.1, ::1 or (``include_local``) this host's name and interface
    addresses. Safe to call from several processes at once: work happens under a lock and every
    file is replaced by rename. Raises ``ValueError`` for a malformed hostname or IP.
    """
    dns, addresses = wanted_names(hostnames, ips, include_local=include_local)
    paths = server_paths(data_dir)
    with directory_lock(tls_dir(data_dir)):
        ca = _load_or_create_ca(data_dir)
        leaf = _current_leaf(paths, ca)
        if leaf is not None:
            have_dns, have_ips = certificate_names(leaf)
            fresh = leaf.not_valid_after_utc - dt.datetime.now(dt.UTC) > RENEW_BEFORE
            if fresh and set(dns) <= set(have_dns) and set(addresses) <= set(have_ips):
                if not paths.chain.is_file():
                    write_chain(paths)
                return paths
            dns = list(dict.fromkeys([*have_dns, *dns]))
            addresses = list(dict.fromkeys([*have_ips, *addresses]))
        _store_leaf(paths, ca, dns, addresses)
    return paths


def renew_server_certificate(data_dir: Path, hostnames: list[str], ips: list[str], *,
                             include_local: bool = True) -> ServerCertPaths:
    """Always issue a new server certificate and key under the existing CA (created if missing),
    keeping the SANs of the current certificate and adding the given ones."""
    dns, addresses = wanted_names(hostnames, ips, include_local=include_local)
    paths = server_paths(data_dir)
    with directory_lock(tls_dir(data_dir)):
        ca = _load_or_create_ca(data_dir)
        try:
            old = x509.load_pem_x509_certificate(paths.cert.read_bytes())
        except (OSError, ValueError):
            old = None
        if old is not None:
            have_dns, have_ips = certificate_names(old)
            dns = list(dict.fromkeys([*have_dns, *dns]))
            addresses = list(dict.fromkeys([*have_ips, *addresses]))
        _store_leaf(paths, ca, dns, addresses)
    return paths
