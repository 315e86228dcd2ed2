"""The two registries under test, each started on a free loopback port and stopped by its PID.

distribution is Debian's ``docker-registry`` (CNCF distribution 2.8) on filesystem storage with the
in-memory blob descriptor cache its sample configuration ships with; moorage is the embedded default
(SQLite + files in one data directory, one Granian worker per core).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.loadgen.http import Connection
from bench.registry import basic_header

REPO_ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 90.0
STOP_SECONDS = 15.0
ADMIN_USER = "admin"


class ServerUnavailable(RuntimeError):
    """The server could not be started or does not offer what a workload needs; the table says why."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, chars: int = 3000) -> str:
    return path.read_bytes()[-chars:].decode(errors="replace") if path.exists() else "<no log>"


@dataclass
class Server:
    """A running registry: where it listens, its process (the root of its tree) and its credentials."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    workdir: Path
    log: Path
    credentials: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM to the server's own process group (it leads it), SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_SECONDS)


def _wait_ready(server: Server) -> None:
    """Poll ``GET /v2/`` until it answers 200 or 401, failing early if the process has exited."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    deadline = time.monotonic() + READY_SECONDS
    delay = 0.02
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerUnavailable(f"{server.name} exited with {server.process.returncode}:\n{log_tail(server.log)}")
        conn = Connection(host, int(port), buffer_size=65536, timeout=5)
        try:
            if conn.request("GET", "/v2/").status in (200, 401):
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    server.stop()
    raise ServerUnavailable(f"{server.name} did not answer on {server.url} within {READY_SECONDS:.0f} s:\n"
                            f"{log_tail(server.log)}")


def _spawn(name: str, argv: list[str], workdir: Path, url: str, env: dict[str, str] | None = None,
           credentials: tuple[str, str] | None = None) -> Server:
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=workdir, env={**os.environ, **(env or {})}, start_new_session=True)
    server = Server(name, url, process, workdir, log, credentials)
    _wait_ready(server)
    return server


def start_distribution(workdir: Path, credentials: tuple[str, str] | None = None) -> Server:
    """``docker-registry serve``; with ``credentials``, htpasswd (bcrypt) authentication for that one user."""
    binary = shutil.which("docker-registry")
    if binary is None:
        raise ServerUnavailable("`docker-registry` is not installed: apt-get install -y docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info", "fields": {"service": "registry"}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}, "delete": {"enabled": True},
                    "cache": {"blobdescriptor": "inmemory"}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if credentials is not None:
        htpasswd = shutil.which("htpasswd")
        if htpasswd is None:
            raise ServerUnavailable("`htpasswd` is not installed: apt-get install -y apache2-utils")
        line = subprocess.run([htpasswd, "-Bbn", *credentials], check=True, capture_output=True, text=True).stdout
        (workdir / "htpasswd").write_text(line.strip() + "\n")
        config["auth"] = {"htpasswd": {"realm": "bench", "path": str(workdir / "htpasswd")}}
    (workdir / "config.yml").write_text(yaml.safe_dump(config))
    return _spawn("distribution", [binary, "serve", str(workdir / "config.yml")], workdir,
                  f"http://127.0.0.1:{port}", credentials=credentials)


def moorage_command() -> tuple[list[str], dict[str, str]]:
    """The installed ``moorage`` script, or this checkout's sources run with the current interpreter."""
    if script := shutil.which("moorage"):
        return [script], {}
    src = str(REPO_ROOT / "src")
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    return [sys.executable, "-m", "moorage.cli.main"], {"PYTHONPATH": path}


def start_moorage(workdir: Path, password: str, auth: bool, workers: int = 0,
                  env: dict[str, str] | None = None) -> Server:
    """``moorage serve --plain-http``; ``auth`` switches on projects, users and token authentication; ``env``:
    more settings."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command, command_env = moorage_command()
    argv = [*command, "serve", "--data-dir", str(workdir / "data"), "--listen", f"127.0.0.1:{port}", "--plain-http"]
    if workers:
        argv += ["--workers", str(workers)]
    settings = {**(env or {}), "MOORAGE_ADMIN_PASSWORD": password, "MOORAGE_AUTH_ENABLED": "true" if auth else "false"}
    server = _spawn("moorage", argv, workdir, f"http://127.0.0.1:{port}", {**command_env, **settings},
                    (ADMIN_USER, password))
    server.notes.extend(ensure_project(server, "bench"))
    return server


def start_server(name: str, workdir: Path, password: str, *, auth: bool = False, workers: int = 0,
                 env: dict[str, str] | None = None) -> Server:
    """Either registry by name; ``auth`` switches authentication on (htpasswd, or moorage's token service);
    ``env``: moorage settings (distribution has its configuration file)."""
    if name == "distribution":
        return start_distribution(workdir, ("bench", password) if auth else None)
    return start_moorage(workdir, password, auth=auth, workers=workers, env=env)


def ensure_project(server: Server, project: str) -> list[str]:
    """Create the project repositories live in (moorage requires one before a push); notes on failure."""
    assert server.credentials is not None
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    conn = Connection(host, int(port), buffer_size=65536)
    body = json.dumps({"project_name": project, "metadata": {"public": "false"}}).encode()
    try:
        response = conn.request("POST", "/api/v2.0/projects", {
            "Authorization": basic_header(*server.credentials), "Content-Type": "application/json"}, body)
    finally:
        conn.close()
    if response.status in (201, 409):
        return []
    return [f"POST /api/v2.0/projects answered {response.status}; pushing without creating project {project!r}"]
