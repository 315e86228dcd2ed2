"""The names and addresses this host answers to, found without touching the network.

Nodes reach a registry by whatever address their network gives them (the seed's node used
``192.168.2.250``), so the certificate must name every local interface address, not just the one
the operator happened to think of. Sources, in order: ``ip -j addr`` (iproute2), then the kernel's
own tables in ``/proc/net``. Loopback and ``localhost`` are always included.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import shutil
import socket
import subprocess
from pathlib import Path

LOOPBACK_IPS = ("127.0.0.1", "::1")
LOOPBACK_NAMES = ("localhost",)


def _usable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # Link-local addresses need a zone (fe80::1%eth0) that a registry reference cannot carry, and
    # multicast/unspecified are never a server's address.
    return not (ip.is_link_local or ip.is_multicast or ip.is_unspecified)


def _from_iproute2() -> list[str] | None:
    exe = shutil.which("ip")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "-j", "addr", "show"], capture_output=True, text=True,
                             timeout=5, check=True).stdout
        interfaces = json.loads(out)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    found: list[str] = []
    for iface in interfaces:
        for info in iface.get("addr_info", []):
            local = info.get("local")
            if isinstance(local, str):
                found.append(local)
    return found


def _from_proc(proc: Path = Path("/proc/net")) -> list[str]:
    found: list[str] = []
    # fib_trie lists each local IPv4 address as a "/32 host LOCAL" leaf under its prefix line.
    try:
        lines = (proc / "fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    for prev, line in itertools.pairwise(lines):
        if "/32 host LOCAL" in line:
            candidate = prev.strip().lstrip("|-+ ").strip()
            found.append(candidate)
    # if_inet6: 32 hex digits per address, then index, prefix length, scope, flags, name.
    try:
        for line in (proc / "if_inet6").read_text().splitlines():
            hexaddr = line.split()[0]
            found.append(str(ipaddress.IPv6Address(bytes.fromhex(hexaddr))))
    except (OSError, ValueError, IndexError):
        pass
    return found


def local_ip_addresses() -> list[str]:
    """Every usable address of this host's interfaces, loopback first, deduplicated, in stable order."""
    raw = _from_iproute2()
    if raw is None:
        raw = _from_proc()
    result: list[str] = []
    for text in [*LOOPBACK_IPS, *raw]:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            continue
        if _usable(ip) and str(ip) not in result:
            result.append(str(ip))
    return result


def local_hostnames() -> list[str]:
    """``localhost`` and this host's own name (no DNS lookup: ``getfqdn`` could block without a resolver)."""
    names = list(LOOPBACK_NAMES)
    own = socket.gethostname().strip().lower()
    if own and own not in names:
        names.append(own)
    return names
