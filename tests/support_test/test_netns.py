"""The netns test host: reachable from the host at its own address, and gone without a trace afterwards."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.netns import netns_host
from tests.support.procs import wait_until


def _namespaces() -> list[str]:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def test_server_in_namespace_is_reached_from_the_host_and_everything_is_torn_down(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("from the test host\n")
    with netns_host() as host:
        assert host.name.startswith("moorage-") and host.name in _namespaces()
        subnet = ipaddress.ip_network(f"{host.address}/30", strict=False)
        assert subnet.subnet_of(ipaddress.ip_network("10.233.0.0/16"))
        assert ipaddress.ip_address(host.host_address) in subnet and host.host_address != host.address
        assert _link_exists(host.host_if)
        # lo is up inside: a loopback connection in the namespace works.
        assert "UP" in host.run(["ip", "-br", "link", "show", "lo"]).stdout

        port = host.free_port()
        server = host.process([sys.executable, "-m", "http.server", "--bind", host.address,
                               "--directory", tmp_path / "www", port], log_path=tmp_path / "http.log")
        url = f"http://{host.address}:{port}/hello.txt"
        response = wait_until(lambda: httpx.get(url, timeout=1), timeout=20, what=url, process=server)
        assert isinstance(response, httpx.Response) and response.text == "from the test host\n"
        # The process really runs inside the namespace, not on the host.
        assert server.pid in host.pids()
        name, host_if, pid = host.name, host.host_if, server.pid

    assert name not in _namespaces()
    assert not _link_exists(host_if)
    assert server.returncode is not None and not Path(f"/proc/{pid}").exists()


def test_teardown_runs_when_the_test_fails_and_stops_stray_processes(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), netns_host() as host:
        name, host_if = host.name, host.host_if
        # Started into the namespace behind the helper's back: teardown must still stop it.
        stray = subprocess.Popen(host.exec_argv(["sleep", "600"]), start_new_session=True)
        wait_until(lambda: stray.pid in host.pids(), timeout=10, what="the stray process in the namespace")
        raise RuntimeError("boom")
    assert stray.wait(timeout=10) is not None
    assert name not in _namespaces()
    assert not _link_exists(host_if)
