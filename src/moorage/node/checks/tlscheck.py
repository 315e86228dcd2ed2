"""The TLS check, judged the way Go's ``crypto/x509`` (containerd, dockerd, CRI-O, kubelet) judges it.

Go's ``Certificate.Verify`` checks, in this order: the leaf's validity period, the host name against
the SANs (``VerifyHostname``), then the chain against the root pool. The first failure is the error
the runtime prints, so the doctor reports them in the same order and with the same words: for the
seed, ``x509: cannot validate certificate for 192.168.2.250 because it doesn't contain any IP SANs``
even though the CA was not trusted either. The chain itself is verified by OpenSSL against exactly the
CA files the runtime would load (plus the node's system bundle), accepting a trusted intermediate as an
anchor like Go does.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509

from moorage.node.checks.trust import RuntimeTrust
from moorage.tls.certs import certificate_names
from moorage.tls.inspect import CertificateInfo, describe_certificate

Protocol = Literal["tls", "http", "unknown"]
UNKNOWN_AUTHORITY = "x509: certificate signed by unknown authority"
# OpenSSL verify codes that all mean "no path to a trusted root" (Go: UnknownAuthorityError).
_UNKNOWN_ISSUER_CODES = {2, 18, 19, 20, 21}
_EXPIRED_CODES = {9, 10}


@dataclass(frozen=True, slots=True)
class ProtocolProbe:
    """What the server at ``host:port`` speaks, found by trying a TLS handshake, then plain HTTP."""

    protocol: Protocol
    detail: str
    leaf_der: bytes | None = None


def _rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _server_name(host: str) -> str | None:
    # Go sends SNI only for names; an IP literal is never sent as SNI.
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None


def probe_protocol(address: tuple[str, int], host: str, timeout: float) -> ProtocolProbe:
    """Try a TLS handshake without verification; if the server does not speak TLS, try plain HTTP."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection(address, timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=_server_name(host)) as tls:
            return ProtocolProbe("tls", f"TLS {tls.version()} handshake", tls.getpeercert(binary_form=True))
    except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
        tls_error = str(exc) or type(exc).__name__
    except OSError as exc:
        return ProtocolProbe("unknown", f"connection failed: {exc}")
    try:
        with socket.create_connection(address, timeout=timeout) as raw:
            raw.sendall(f"GET /v2/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            head = raw.recv(64)
    except OSError as exc:
        return ProtocolProbe("unknown", f"neither TLS ({tls_error}) nor HTTP ({exc})")
    if head.startswith(b"HTTP/"):
        status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
        return ProtocolProbe("http", f"plain HTTP ({status_line})")
    return ProtocolProbe("unknown", f"neither TLS ({tls_error}) nor HTTP (reply {head[:16]!r})")


def go_validity_error(cert: x509.Certificate, now: dt.datetime) -> str | None:
    """Go's CertificateInvalidError{Reason: Expired} text, or None while the certificate is valid."""
    if now < cert.not_valid_before_utc:
        bound, relation = cert.not_valid_before_utc, "before"
    elif now > cert.not_valid_after_utc:
        bound, relation = cert.not_valid_after_utc, "after"
    else:
        return None
    return (f"x509: certificate has expired or is not yet valid: current time {_rfc3339(now)} is "
            f"{relation} {_rfc3339(bound)}")


def _match_dns(pattern: str, host: str) -> bool:
    """Go's matchHostnames: case-insensitive, a leading ``*`` label covers exactly one label."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if not pattern or not host:
        return False
    p_labels, h_labels = pattern.split("."), host.split(".")
    if len(p_labels) != len(h_labels):
        return False
    return all((i == 0 and p == "*" and len(p_labels) > 2) or p == h
               for i, (p, h) in enumerate(zip(p_labels, h_labels, strict=True)))


def _has_san_extension(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return False
    return True


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


def go_hostname_error(cert: x509.Certificate, host: str) -> str | None:
    """Go's ``VerifyHostname`` + ``HostnameError.Error()``: None when ``host`` is covered."""
    dns, ips = certificate_names(cert)
    try:
        wanted_ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        wanted_ip = None
    if wanted_ip is not None:
        if any(ipaddress.ip_address(ip) == wanted_ip for ip in ips):
            return None
    elif any(_match_dns(name, host) for name in dns):
        return None
    if not _has_san_extension(cert) and _match_dns(_common_name(cert), host):
        return "x509: certificate relies on legacy Common Name field, use SANs instead"
    if wanted_ip is not None:
        if not ips:
            return f"x509: cannot validate certificate for {host} because it doesn't contain any IP SANs"
        valid = ", ".join(ips)
    else:
        valid = ", ".join(dns)
    if not valid:
        return f"x509: certificate is not valid for any names, but wanted to match {host}"
    return f"x509: certificate is valid for {valid}, not {host}"


def _hostname_cause(message: str, host: str) -> str:
    if "legacy Common Name" in message:
        return "tls-legacy-common-name"
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "tls-missing-dns-san"
    return "tls-missing-ip-san"


def verification_context(trust: RuntimeTrust, *, verify: bool = True) -> tuple[ssl.SSLContext, list[str]]:
    """An OpenSSL context trusting what the runtime trusts (host names are checked separately, the Go
    way); returns it with notes about CA files that could not be loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    notes: list[str] = []
    if not verify:
        ctx.verify_mode = ssl.CERT_NONE
        return ctx, notes
    ctx.verify_mode = ssl.CERT_REQUIRED
    # Go accepts any certificate in its root pool as an anchor, self-signed or not.
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    bundles = trust.system_bundles
    if bundles is None:
        ctx.load_default_certs()
    for path in [*(bundles or []), *trust.ca_files]:
        try:
            ctx.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError) as exc:
            notes.append(f"cannot load CA file {path}: {getattr(exc, 'strerror', None) or exc}; the runtime "
                         "fails to load it too")
    return ctx, notes


@dataclass
class TlsVerdict:
    """The outcome of the TLS check: the first failure in Go's order, and anything else wrong."""

    certificate: CertificateInfo | None
    cause: str | None = None
    message: str = ""
    facts: dict[str, str] = field(default_factory=dict)
    also: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.cause is None


def _chain_error(address: tuple[str, int], host: str, ctx: ssl.SSLContext,
                 timeout: float) -> tuple[str, str] | None:
    """(cause, Go-style message) when OpenSSL cannot build a trusted chain, else None."""
    try:
        with socket.create_connection(address, timeout=timeout) as raw, \
                ctx.wrap_socket(raw, server_hostname=_server_name(host)):
            return None
    except ssl.SSLCertVerificationError as exc:
        code = exc.verify_code
        if code in _UNKNOWN_ISSUER_CODES:
            return "tls-unknown-authority", UNKNOWN_AUTHORITY
        if code in _EXPIRED_CODES:
            return "tls-expired", f"x509: certificate has expired or is not yet valid: {exc.verify_message} (CA)"
        return "tls-other", f"x509: {exc.verify_message}"
    except (ssl.SSLError, OSError) as exc:
        return "tls-other", f"tls: {exc}"


def check_tls(address: tuple[str, int], host: str, leaf_der: bytes, trust: RuntimeTrust, timeout: float,
              now: dt.datetime | None = None) -> TlsVerdict:
    """Judge the server's certificate as ``trust.runtime`` on this node would."""
    now = now or dt.datetime.now(dt.UTC)
    cert = x509.load_der_x509_certificate(leaf_der)
    described = describe_certificate(cert, now=now)
    verdict = TlsVerdict(certificate=described)
    ctx, verdict.notes = verification_context(trust)
    problems: list[tuple[str, str]] = []
    validity = go_validity_error(cert, now)
    if validity:
        problems.append(("tls-expired", validity))
    hostname = go_hostname_error(cert, host)
    if hostname:
        problems.append((_hostname_cause(hostname, host), hostname))
    chain = _chain_error(address, host, ctx, timeout)
    if chain:
        problems.append(chain)
    if not problems:
        return verdict
    if trust.skip_verify:
        verdict.notes.append(f"{trust.runtime} does not verify this registry's certificate (insecure/skip_verify),"
                             f" so these go unnoticed: {'; '.join(m for _, m in problems)}")
        return verdict
    verdict.cause, verdict.message = problems[0]
    verdict.also = [message for _, message in problems[1:]]
    verdict.facts = {"ip": host, "hostname": host, "valid_for": ", ".join(
        [*described.dns_names, *described.ip_addresses]) or "no names", "issuer": described.issuer}
    if validity:
        verdict.facts.update(now=_rfc3339(now), relation="after" if now > cert.not_valid_after_utc else "before",
                             bound=_rfc3339(cert.not_valid_after_utc if now > cert.not_valid_after_utc
                                            else cert.not_valid_before_utc))
    if verdict.cause == "tls-other":
        verdict.facts["tls_error"] = verdict.message.removeprefix("x509: ").removeprefix("tls: ")
    return verdict
