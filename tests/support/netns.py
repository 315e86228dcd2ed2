"""A test host of our own: a network namespace with a veth pair, created and torn down by the test run.

Why: dockerd 20.10 treats every registry on 127.0.0.0/8 as insecure, so on loopback docker never verifies
TLS. A server inside a namespace the test run created itself is reached from the host at a non-loopback
address (``10.233.X.2``) through a veth pair, and docker verifies it like a real remote registry.
These namespaces are the only non-loopback targets the tests may use.

Usage::

    with netns_host() as host:           # NetnsHost; host.address is the namespace side, e.g. 10.233.17.2
        port = host.free_port()
        server = host.process([sys.executable, "-m", "http.server", "--bind", host.address, str(port)],
                              log_path=tmp / "server.log")
        ...                              # reach it from the host at host.address:port

Teardown (also when the block raises) stops every process by PID — the ones started through ``process``
first, then any PID still inside the namespace (nothing else can be in a namespace we just made) — and
deletes the namespace, which destroys the veth pair; the host side is deleted explicitly if it lingers.
Creation needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); without it ``NetnsUnavailable`` says so: it is a
failure, never a skip.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.procs import ManagedProcess, require_tool, wait_until

#: Addresses come from 10.233.0.0/16, one /30 per test host: host side .1, namespace side .2.
SUPERNET = ipaddress.ip_network("10.233.0.0/16")
ATTEMPTS = 20
TEARDOWN_TIMEOUT = 15.0


class NetnsUnavailable(AssertionError):
    """The test host could not be created (e.g. not root); an AssertionError so pytest shows a failure."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([_ip_binary(), *args], capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed ({done.returncode}): {done.stderr.strip()}")
    return done


def _ip_binary() -> str:
    return require_tool("ip", "iproute2")


def _host_networks() -> list[ipaddress.IPv4Network]:
    """IPv4 networks the host already uses: its interface addresses and its (non-default) routes."""
    used: list[ipaddress.IPv4Network] = []
    for link in json.loads(_ip("-j", "-4", "addr", "show").stdout or "[]"):
        for info in link.get("addr_info", []):
            used.append(ipaddress.IPv4Network(f"{info['local']}/{info['prefixlen']}", strict=False))
    for route in json.loads(_ip("-j", "-4", "route", "show", "table", "all").stdout or "[]"):
        destination = route.get("dst", "default")
        if destination != "default":
            with contextlib.suppress(ValueError):
                used.append(ipaddress.IPv4Network(destination, strict=False))
    return used


def _addresses_in(subnet: ipaddress.IPv4Network) -> list[tuple[str, str]]:
    """(interface, address) pairs on the host whose address lies in ``subnet``."""
    found = []
    for link in json.loads(_ip("-j", "-4", "addr", "show").stdout or "[]"):
        for info in link.get("addr_info", []):
            if ipaddress.ip_address(info["local"]) in subnet:
                found.append((link["ifname"], info["local"]))
    return found


def _pick_subnet() -> ipaddress.IPv4Network:
    used = _host_networks()
    for _ in range(ATTEMPTS * 5):
        subnet = ipaddress.IPv4Network(f"10.233.{secrets.randbelow(256)}.0/30")
        if not any(subnet.overlaps(network) for network in used):
            return subnet
    raise NetnsUnavailable(f"no free /30 in {SUPERNET} on this host (every candidate overlaps a used network)")


@dataclass
class NetnsHost:
    """A network namespace reachable from the host at ``address`` through veth ``host_if``."""

    name: str
    host_if: str
    ns_if: str
    subnet: ipaddress.IPv4Network
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def host_address(self) -> str:
        """The host's side of the veth (what the namespace sees as its peer)."""
        return str(self.subnet.network_address + 1)

    @property
    def address(self) -> str:
        """The namespace's address: where servers started in it are reached from the host."""
        return str(self.subnet.network_address + 2)

    def exec_argv(self, argv: Sequence[object]) -> list[str]:
        """``argv`` run inside the namespace. ``ip netns exec`` execs it, so its PID is the command's own."""
        return [_ip_binary(), "netns", "exec", self.name, *map(str, argv)]

    def run(self, argv: Sequence[object], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a short command inside the namespace and wait for it."""
        return subprocess.run(self.exec_argv(argv), capture_output=True, text=True, timeout=timeout, check=False)

    def process(self, argv: Sequence[object], log_path: Path, env: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> ManagedProcess:
        """Start a long-running command inside the namespace; it is stopped by PID at teardown."""
        managed = ManagedProcess(self.exec_argv(argv), log_path=log_path, env=env, cwd=cwd)
        self.processes.append(managed)
        return managed.start()

    def free_port(self) -> int:
        """A TCP port free on ``address`` inside the namespace (the namespace's kernel picks it)."""
        probe = ("import socket, sys; s = socket.socket(); s.bind((sys.argv[1], 0)); "
                 "print(s.getsockname()[1])")
        done = self.run([sys.executable, "-c", probe, self.address])
        if done.returncode != 0:
            raise NetnsUnavailable(f"cannot run a command in namespace {self.name}: {done.stderr.strip()}")
        return int(done.stdout.strip())

    def pids(self) -> list[int]:
        """PIDs of every process whose network namespace is this one."""
        done = _ip("netns", "pids", self.name, check=False)
        return [int(pid) for pid in done.stdout.split()] if done.returncode == 0 else []

    def exists(self) -> bool:
        return self.name in _ip("netns", "list").stdout.split()

    def close(self) -> None:
        """Stop processes by PID, delete the namespace (and so the veth pair); raise if anything is left."""
        try:
            for managed in reversed(self.processes):
                managed.stop()
            self.processes.clear()
        finally:
            # Anything still in the namespace was started into it by this run (it did not exist before).
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            # Deleting the name while a process lingers would leave the namespace (and veth) alive unseen.
            try:
                wait_until(lambda: not self.pids(), TEARDOWN_TIMEOUT,
                           f"processes in namespace {self.name} to exit")
            finally:
                self._delete()

    def _delete(self) -> None:
        if self.exists():
            _ip("netns", "delete", self.name)
        if _link_exists(self.host_if):
            _ip("link", "delete", self.host_if, check=False)
        wait_until(lambda: not _link_exists(self.host_if) and not self.exists(), TEARDOWN_TIMEOUT,
                   f"namespace {self.name} and veth {self.host_if} to disappear")


def _link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def _create(name: str, token: str) -> NetnsHost:
    subnet = _pick_subnet()
    host = NetnsHost(name=name, host_if=f"mrg{token}h", ns_if=f"mrg{token}n", subnet=subnet)
    done = _ip("netns", "add", name, check=False)
    if done.returncode != 0:
        raise NetnsUnavailable(
            f"cannot create network namespace {name}: {done.stderr.strip() or done.returncode}. The docker TLS "
            "tests run their registry on a test host in a namespace of their own and need root "
            "(CAP_SYS_ADMIN + CAP_NET_ADMIN) for `ip netns add`.")
    try:
        prefix = subnet.prefixlen
        _ip("link", "add", host.host_if, "type", "veth", "peer", "name", host.ns_if, "netns", name)
        _ip("addr", "add", f"{host.host_address}/{prefix}", "dev", host.host_if)
        _ip("link", "set", host.host_if, "up")
        _ip("-n", name, "addr", "add", f"{host.address}/{prefix}", "dev", host.ns_if)
        _ip("-n", name, "link", "set", host.ns_if, "up")
        _ip("-n", name, "link", "set", "lo", "up")
        # Another run may have picked the same /30 between our check and our `addr add`: give way.
        others = [pair for pair in _addresses_in(subnet) if pair[0] != host.host_if]
        if others:
            raise _SubnetTaken(f"{subnet} is also on {others}")
    except BaseException:
        host.close()
        raise
    return host


class _SubnetTaken(Exception):
    pass


@contextmanager
def netns_host(prefix: str = "moorage") -> Iterator[NetnsHost]:
    """A fresh namespace ``<prefix>-<random>`` with a veth pair to the host; torn down on exit, always."""
    last: _SubnetTaken | None = None
    for _ in range(ATTEMPTS):
        token = secrets.token_hex(3)
        try:
            host = _create(f"{prefix}-{token}", token)
            break
        except _SubnetTaken as taken:
            last = taken
    else:
        raise NetnsUnavailable(f"could not find an unused subnet for a test host: {last}")
    try:
        yield host
    finally:
        host.close()
