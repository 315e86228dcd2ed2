"""Name resolution and TCP reachability, reported in the words Go's ``net`` package uses.

The runtime on the node resolves with the node's own resolver (``/etc/hosts``, ``resolv.conf``), not
the cluster DNS pods use, so these checks must run on the node itself.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NetworkFailure:
    """Why the registry could not be reached; ``cause`` is a catalogue id, ``message`` Go's text."""

    cause: str
    message: str
    address: str


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve(host: str, port: int) -> list[tuple[str, int]] | NetworkFailure:
    """Every address ``host`` resolves to (in the resolver's order), or why it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return NetworkFailure("no-such-host", f"lookup {host}: no such host ({exc.strerror})",
                              hostport(host, port))
    addresses: list[tuple[str, int]] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        pair = (str(sockaddr[0]), int(sockaddr[1]))
        if pair not in addresses:
            addresses.append(pair)
    return addresses


def connect(addresses: list[tuple[str, int]], timeout: float) -> tuple[str, int] | NetworkFailure:
    """The first address that accepts a TCP connection (as Go's dialer tries them), or the failure
    of the first one (the address a runtime's error message names)."""
    first: NetworkFailure | None = None
    for host, port in addresses:
        target = hostport(host, port)
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return host, port
        except TimeoutError:
            failure = NetworkFailure("io-timeout", f"dial tcp {target}: i/o timeout", target)
        except ConnectionRefusedError:
            failure = NetworkFailure("connection-refused", f"dial tcp {target}: connect: connection refused",
                                     target)
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                word = "no route to host" if exc.errno == errno.EHOSTUNREACH else "network is unreachable"
                failure = NetworkFailure("unreachable", f"dial tcp {target}: connect: {word}", target)
            else:
                failure = NetworkFailure("unreachable", f"dial tcp {target}: connect: {exc.strerror or exc}",
                                         target)
        first = first or failure
    assert first is not None, "connect() needs at least one address"
    return first
