"""Start and stop a real ``moorage serve`` process for tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
from tests.support.procs import ManagedProcess, free_port, wait_until

ADMIN_PASSWORD = "Admin-Passw0rd-for-tests"


class MoorageServer:
    def __init__(self, data_dir: Path, workers: int = 2, port: int | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.workers = workers
        self.port = port or free_port()
        self.env = env or {}
        self.process: ManagedProcess | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    def start(self) -> None:
        env = {**os.environ, "MOORAGE_ADMIN_PASSWORD": ADMIN_PASSWORD, **self.env}
        command = [sys.executable, "-m", "moorage.cli.main", "serve", "--data-dir", str(self.data_dir),
                   "--listen", self.host, "--plain-http", "--workers", str(self.workers)]
        self.process = ManagedProcess(command, log_path=self.log_path, env=env)
        self.process.start()
        wait_until(self._ready, timeout=30, what=f"moorage on {self.host}", process=self.process)

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v2/", timeout=1).status_code in (200, 401)
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def project(self, name: str, public: bool = False) -> str:
        """Make sure project ``name`` exists (created by the admin through the API); returns its name."""
        with httpx.Client(base_url=f"{self.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=30) as api:
            response = api.post("/projects", json={"project_name": name,
                                                   "metadata": {"public": str(public).lower()}})
            assert response.status_code in (201, 409), response.text
        return name

    def client(self) -> httpx.Client:
        """An HTTP client speaking to the registry as the admin (Basic auth, accepted on /v2/)."""
        return httpx.Client(base_url=self.url, auth=("admin", ADMIN_PASSWORD), timeout=60)
