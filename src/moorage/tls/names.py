"""Validating and normalising the names a certificate will carry."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_hostname(name: str) -> str:
    """Lower-case ASCII (IDNA) form of a DNS name; ``*.`` is allowed as the first label only."""
    text = name.strip().rstrip(".").lower()
    if not text:
        raise ValueError("empty hostname")
    try:
        ascii_name = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError as exc:
        raise ValueError(f"{name!r} is not a valid hostname: {exc}") from None
    labels = ascii_name.split(".")
    for index, label in enumerate(labels):
        if index == 0 and label == "*" and len(labels) > 2:
            continue
        if not _LABEL.match(label):
            raise ValueError(f"{name!r} is not a valid hostname (bad label {label!r})")
    if len(ascii_name) > 253:
        raise ValueError(f"{name!r} is longer than 253 characters")
    return ascii_name


def normalize_ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def split_names(hostnames: list[str], ips: list[str]) -> tuple[list[str], list[str]]:
    """Normalise both lists; a ``--hostname`` that is really an IP moves to the IP list (Go would
    never match an IP against a DNS SAN, which is exactly the seed's failure)."""
    dns: list[str] = []
    addresses: list[str] = []
    for name in hostnames:
        try:
            addresses.append(normalize_ip(name))
        except ValueError:
            dns.append(normalize_hostname(name))
    addresses.extend(normalize_ip(ip) for ip in ips)
    return _dedupe(dns), _dedupe(addresses)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
