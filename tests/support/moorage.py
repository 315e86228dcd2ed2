"""Start and stop a real ``moorage serve`` process for tests."""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.support.procs import ManagedProcess, free_port, wait_until

ADMIN_PASSWORD = "Admin-Passw0rd-for-tests"


class MoorageServer:
    def __init__(self, data_dir: Path, workers: int = 2, port: int | None = None,
                 env: dict[str, str] | None = None, tls: bool = False, bind_host: str = "127.0.0.1",
                 launcher: Sequence[str] = (), extra_args: Sequence[str] = ()) -> None:
        self.data_dir = data_dir
        self.workers = workers
        #: Where it listens and is reached; another address only for a test host of our own (tests.support.netns).
        self.bind_host = bind_host
        self.port = port or free_port()
        self.env = env or {}
        #: HTTPS with moorage's own CA (``ca_file``) instead of ``--plain-http``.
        self.tls = tls
        #: Prefix for the command, e.g. ``NetnsHost.exec_argv([])`` to run it inside a test host's namespace.
        self.launcher = list(launcher)
        #: More ``moorage serve`` options, e.g. ``["--ip", "10.233.7.2"]``.
        self.extra_args = list(extra_args)
        self.process: ManagedProcess | None = None

    @property
    def host(self) -> str:
        return f"{self.bind_host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def ca_file(self) -> Path:
        """The CA that signed the server certificate (exists once a TLS server has started)."""
        return self.data_dir / "tls" / "ca.crt"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx needs to trust this server (raises until a TLS server has written its CA)."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.tls else True

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def start(self) -> None:
        env = {**os.environ, "MOORAGE_ADMIN_PASSWORD": ADMIN_PASSWORD, **self.env}
        command = [*self.launcher, sys.executable, "-m", "moorage.cli.main", "serve", "--data-dir",
                   str(self.data_dir), "--listen", self.host, "--plain-http" if not self.tls else "--tls",
                   "--workers", str(self.workers), *self.extra_args]
        self.process = ManagedProcess(command, log_path=self.log_path, env=env)
        self.process.start()
        wait_until(self._ready, timeout=30, what=f"moorage on {self.host}", process=self.process)

    def _ready(self) -> bool:
        try:
            # The CA file appears during startup, so it is read on every poll.
            return httpx.get(f"{self.url}/v2/", timeout=1, verify=self.verify).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Stop the server by its PID, then hold it to the rule that whatever the tests sent, it never
        answered with a 5xx nor logged a traceback."""
        if self.process is not None:
            self.process.stop()
            self.process = None
        errors = self.server_errors()
        assert not errors, f"moorage answered 5xx or logged a traceback ({self.log_path}):\n" + "\n".join(errors[:20])

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def server_errors(self) -> list[str]:
        """Access-log lines of requests that got a 5xx, and any traceback: bad input must never cause one."""
        return [line for line in self.log().splitlines()
                if '"status": 5' in line or line.startswith("Traceback") or '"exception"' in line]

    def project(self, name: str, public: bool = False) -> str:
        """Make sure project ``name`` exists (created by the admin through the API); returns its name."""
        with httpx.Client(base_url=f"{self.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30,
                          verify=self.verify) as api:
            response = api.post("/projects", json={"project_name": name,
                                                   "metadata": {"public": str(public).lower()}})
            assert response.status_code in (201, 409), response.text
        return name

    def client(self) -> httpx.Client:
        """An HTTP client speaking to the registry as the admin (Basic auth, accepted on /v2/)."""
        return httpx.Client(base_url=self.url, auth=("admin", ADMIN_PASSWORD), timeout=60, verify=self.verify)
