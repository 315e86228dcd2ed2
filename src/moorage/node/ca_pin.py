"""Fetching the registry's CA over the network, pinned by its SHA-256 fingerprint.

A node cannot verify the registry before it trusts the CA, so the CA is fetched without verification
(Harbor's ``GET /api/v2.0/systeminfo/getcert``) and accepted only when its fingerprint equals the one
``moorage serve`` printed: a machine in the middle can serve another CA, but not one with that
fingerprint. No file has to be copied to each node, and nothing is trusted on first use alone.
"""

from __future__ import annotations

import re
import ssl

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes

GETCERT_PATH = "/api/v2.0/systeminfo/getcert"
_HEX = re.compile(r"[0-9a-f]{64}")


class PinError(ValueError):
    """The CA could not be fetched, or it is not the one pinned; the message says what to check."""


def fingerprint(cert: x509.Certificate) -> str:
    """``sha256:<hex>`` of the DER certificate: the form ``moorage serve`` prints and ``--ca-fingerprint`` takes."""
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()


def pem_fingerprint(pem: str | bytes) -> str:
    return fingerprint(x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem))


def parse_fingerprint(text: str) -> str:
    """Accept ``sha256:ab12…``, ``SHA256:AB:12:…`` (openssl's and ``moorage tls show``'s) or bare hex."""
    raw = text.strip().lower()
    raw = raw.removeprefix("sha256:").removeprefix("sha256=").replace(":", "")
    if not _HEX.fullmatch(raw):
        raise PinError(f"{text!r} is not a SHA-256 fingerprint: give the sha256:… value `moorage serve` printed "
                       "(or `moorage tls show` on the registry host)")
    return "sha256:" + raw


def fetch_pinned_ca(registry: str, expected: str, timeout: float = 15.0) -> str:
    """The PEM CA served by ``https://<registry>``, if its fingerprint is ``expected`` (else :class:`PinError`)."""
    pinned = parse_fingerprint(expected)
    url = f"https://{registry}{GETCERT_PATH}"
    # Not verified on purpose: the fingerprint check below is what makes the answer trustworthy.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        response = httpx.get(url, verify=context, timeout=timeout)
    except httpx.HTTPError as exc:
        raise PinError(f"cannot fetch the CA from {url}: {exc or type(exc).__name__}. Check that the registry "
                       f"listens on {registry} over HTTPS and that this node reaches it (`moorage doctor` "
                       "names the failing step)") from None
    if response.status_code != 200:
        raise PinError(f"{url} answered {response.status_code}: the server there does not hand out a CA (a "
                       "moorage registry serving HTTPS does). Check the HOST:PORT, or pass --ca-file")
    try:
        cert = x509.load_pem_x509_certificate(response.content)
    except ValueError:
        raise PinError(f"{url} did not answer with a PEM certificate; check the HOST:PORT is the registry") from None
    got = fingerprint(cert)
    if got != pinned:
        raise PinError(f"the CA served at {registry} has fingerprint {got}, not {pinned}: nothing was written. "
                       "Check the fingerprint against what `moorage serve` printed (or `moorage tls show` on the "
                       f"registry host) and that {registry} is really your registry; a different value means "
                       "another server, or something in between, answered")
    return response.text


def chain_problem(registry: str, ca_pem: str, timeout: float = 15.0) -> str | None:
    """None when the server at ``registry`` presents a certificate the CA signed for that name."""
    host = registry.rsplit(":", 1)[0].strip("[]") if registry.rsplit("]", 1)[-1].count(":") == 1 else \
        registry.strip("[]")
    context = ssl.create_default_context(cadata=ca_pem)
    try:
        with httpx.Client(verify=context, timeout=timeout) as client:
            client.get(f"https://{registry}/v2/")
    except httpx.HTTPError as exc:
        return (f"the pinned CA is right, but the server's certificate does not verify for {host}: {exc}. "
                "`moorage tls show` on the registry host lists the names and addresses it covers")
    return None
