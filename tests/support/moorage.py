"""Start and stop a real ``moorage serve`` process for tests."""

from __future__ import annotations

import contextlib
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.support.procs import ManagedProcess, free_port, group_members, wait_until

ADMIN_PASSWORD = "Admin-Passw0rd-for-tests"


class MoorageServer:
    def __init__(self, data_dir: Path, workers: int = 2, port: int | None = None,
                 env: dict[str, str] | None = None, tls: bool = False, bind_host: str = "127.0.0.1",
                 launcher: Sequence[str] = (), extra_args: Sequence[str] = (), log_path: Path | None = None) -> None:
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
        #: 5xx statuses a test provokes on purpose (a full disk is the operator's to fix, not bad input).
        self.expected_5xx: set[int] = set()
        #: Replicas sharing one data directory each need a log of their own.
        self.log_path = log_path or data_dir.parent / f"{data_dir.name}-server.log"
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

    def start(self) -> None:
        env = {**os.environ, "MOORAGE_ADMIN_PASSWORD": ADMIN_PASSWORD, **self.env}
        command = [*self.launcher, sys.executable, "-m", "moorage.cli.main", "serve", "--data-dir",
                   str(self.data_dir), "--listen", self.host, "--plain-http" if not self.tls else "--tls",
                   "--workers", str(self.workers), *self.extra_args]
        self.process = ManagedProcess(command, log_path=self.log_path, env=env)
        self.process.start()
        wait_until(self._ready, timeout=30, what=f"moorage on {self.host}", process=self.process)

    def start_with_certificate(self, dns_names: list[str], ips: list[str]) -> None:
        """Serve moorage with a server certificate naming exactly these names and addresses: a broken one,
        like the seed's registry had. ``moorage serve`` would reissue it to cover its own addresses (that
        is the fix), so the app runs under Granian directly. One ordinary start first makes the data
        directory, schema and CA."""
        from cryptography.hazmat.primitives import serialization

        from moorage.tls.ca import key_pem, load_ca, new_key
        from moorage.tls.certs import build_server_certificate, server_paths, write_chain

        assert self.tls, "a certificate needs a TLS server"
        self.start()
        self.stop()
        paths = server_paths(self.data_dir)
        ca = load_ca(self.data_dir)
        assert ca is not None
        key = new_key()
        paths.key.write_bytes(key_pem(key))
        leaf = build_server_certificate(ca, key, dns_names, ips)
        paths.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        write_chain(paths)
        command = [*self.launcher, sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
                   "--host", self.bind_host, "--port", str(self.port), "--workers", "1",
                   "--ssl-certificate", str(paths.chain), "--ssl-keyfile", str(paths.key), "moorage.app:create_app"]
        env = {**os.environ, "MOORAGE_DATA_DIR": str(self.data_dir), "MOORAGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
               **self.env}
        self.process = ManagedProcess(command, log_path=self.log_path, env=env)
        self.process.start()
        wait_until(self._answers_despite_names, timeout=30, what=f"moorage with a chosen certificate on {self.host}",
                   process=self.process)

    def _answers_despite_names(self) -> bool:
        # Trusts the right CA but skips the name check: the name check is exactly what is broken here.
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.check_hostname = False
        try:
            return httpx.get(f"{self.url}/v2/", verify=context, timeout=2).status_code == 401
        except httpx.HTTPError:
            return False

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

    def bytes_read(self) -> int:
        """Bytes its processes have read so far, from files and sockets alike (``rchar`` in /proc/PID/io)."""
        assert self.process is not None
        total = 0
        for pid in group_members(self.process.pid):
            with contextlib.suppress(OSError):
                lines = Path(f"/proc/{pid}/io").read_text().splitlines()
                total += next(int(line.split()[1]) for line in lines if line.startswith("rchar:"))
        return total

    def processes_mapping(self, fragment: str) -> list[int]:
        """PIDs of its processes with a file whose path contains ``fragment`` mapped (a loaded library)."""
        assert self.process is not None
        found = []
        for pid in group_members(self.process.pid):
            with contextlib.suppress(OSError):
                if fragment in Path(f"/proc/{pid}/maps").read_text():
                    found.append(pid)
        return found

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def server_errors(self) -> list[str]:
        """Access-log lines of requests that got a 5xx, and any traceback: bad input must never cause one."""
        expected = tuple(f'"status": {status},' for status in self.expected_5xx)
        return [line for line in self.log().splitlines()
                if ('"status": 5' in line and not any(e in line for e in expected))
                or line.startswith("Traceback") or '"exception"' in line]

    def signing_key(self) -> tuple[str, object]:
        """(kid, private key) of the token signing key, opened with the secret key beside the database, as
        only someone holding both could: for tests that forge tokens with the real key."""
        import sqlite3

        from cryptography.hazmat.primitives import serialization

        from moorage.auth.sealing import Sealer
        from moorage.settings import Settings

        with sqlite3.connect(self.data_dir / "moorage.db") as db:
            kid, sealed = db.execute("SELECT kid, private_pem FROM signing_keys").fetchone()
        sealer = Sealer(Settings(data_dir=self.data_dir))
        return kid, serialization.load_pem_private_key(sealer.open(sealed, kid), password=None)

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
