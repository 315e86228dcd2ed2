"""The admin CLI against moorage serving HTTPS with its own CA: ``--ca-file`` trusts it, ``--insecure``
skips the check, and without either the certificate failure is one clear line (no traceback)."""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from moorage.tls import server_paths
from tests.cli.admin.conftest import Cli, cli_env
from tests.support.moorage import ADMIN_PASSWORD
from tests.support.procs import ManagedProcess, free_port, wait_until


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(https URL, CA file) of a one-worker moorage on 127.0.0.1 with the certificate it made itself."""
    data = tmp_path_factory.mktemp("admin-cli-tls")
    port = free_port()
    process = ManagedProcess(
        [sys.executable, "-m", "moorage.cli.main", "serve", "--data-dir", str(data / "data"),
         "--listen", f"127.0.0.1:{port}", "--workers", "1"],
        log_path=data / "server.log", env={**os.environ, "MOORAGE_ADMIN_PASSWORD": ADMIN_PASSWORD})
    process.start()
    url = f"https://127.0.0.1:{port}"
    ca = server_paths(data / "data").ca

    def ready() -> bool:
        if not ca.exists():
            return False
        trust = ssl.create_default_context(cafile=str(ca))
        return httpx.get(f"{url}/api/v2.0/ping", verify=trust, timeout=2).status_code == 200

    try:
        wait_until(ready, timeout=60, what=f"{url}/api/v2.0/ping over TLS", process=process)
        yield url, ca
    finally:
        process.stop()


def test_ca_file_insecure_and_untrusted(tls_server: tuple[str, Path], tmp_path: Path) -> None:
    url, ca = tls_server
    home = tmp_path / "home"
    home.mkdir()
    # The CA was made a moment ago, so no system trust store holds it: only --ca-file can.
    cli = Cli(home, {**cli_env(home), "MOORAGE_USERNAME": "admin", "MOORAGE_PASSWORD": ADMIN_PASSWORD})

    untrusted = cli.run("project", "list", "--server", url, ok=False)
    assert untrusted.code == 1 and "cannot reach" in untrusted.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr or "certificate" in untrusted.stderr.lower()

    assert isinstance(cli.json("project", "list", "--server", url, "--ca-file", str(ca)), list)
    assert isinstance(cli.json("project", "list", "--server", url, "--insecure"), list)

    # The login profile remembers the CA, so later commands need neither flag.
    cli.run("admin", "login", url, "--ca-file", str(ca), env={"MOORAGE_USERNAME": None})
    assert cli.json("system", "info", env={"MOORAGE_USERNAME": None, "MOORAGE_PASSWORD": None})["server"] == url
    cli.run("project", "create", "tls-made", env={"MOORAGE_USERNAME": None, "MOORAGE_PASSWORD": None})

    bad = cli.run("project", "list", "--server", url, "--ca-file", str(tmp_path / "missing.crt"), ok=False)
    assert bad.code == 1 and "missing.crt" in bad.stderr and "CA bundle" in bad.stderr
