"""Helpers for the TLS tests: processes on loopback ports, TLS servers, a tiny OCI image.

Self-contained on purpose: these tests must run even while the shared ``tests/support`` helpers
are still being written.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"

# Debian package that provides each external tool (a missing tool fails the test, naming it).
PACKAGES = {"openssl": "openssl", "skopeo": "skopeo", "containerd": "containerd", "ctr": "containerd",
            "docker-registry": "docker-registry"}


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: apt-get install -y {PACKAGES.get(name, name)}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               process: subprocess.Popen[bytes] | None = None, log: Path | None = None) -> None:
    """Poll ``check`` until it is true; fail early (with the log) if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if process is not None and process.poll() is not None:
            text = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            pytest.fail(f"{what} exited with {process.returncode} before it was ready:\n{text}")
        time.sleep(0.05)
    text = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"{what} not ready after {timeout}s\n{text}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def running(command: list[str], log: Path, ready: Callable[[], bool], what: str,
            env: dict[str, str] | None = None, timeout: float = 30) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in its own process group, wait for ``ready``, stop it by PID afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
    try:
        wait_until(ready, timeout, what, process=proc, log=log)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def tls_handshake(port: int, server_name: str, cafile: Path, host: str = "127.0.0.1") -> ssl.SSLSocket:
    """Connect and verify like a strict client: only ``cafile`` is trusted, hostname checked."""
    context = ssl.create_default_context(cafile=str(cafile))
    raw = socket.create_connection((host, port), timeout=5)
    return context.wrap_socket(raw, server_hostname=server_name)


def https_get(port: int, server_name: str, cafile: Path, path: str = "/v2/") -> tuple[int, bytes]:
    with tls_handshake(port, server_name, cafile) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {server_name}:{port}\r\nConnection: close\r\n\r\n"
                     .encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1]


def tls_ready(port: int, cafile: Path) -> Callable[[], bool]:
    def check() -> bool:
        try:
            https_get(port, "localhost", cafile)
            return True
        except (OSError, ValueError, IndexError):
            return False
    return check


@contextmanager
def granian_tls(tmp: Path, cert: Path, key: Path, cafile: Path) -> Iterator[int]:
    """Granian (moorage's server) serving a trivial registry-shaped ASGI app over TLS."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    # The Granian installed with moorage, whether or not the venv's bin is on PATH.
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--no-ws", "--ssl-certificate", str(cert), "--ssl-keyfile", str(key),
               "tls_asgi_app:app"]
    # Readiness only needs the port: the certificate under test may be one clients must reject.
    with running(command, tmp / f"granian-{port}.log", lambda: port_open(port), "granian", env=env):
        yield port


def run(command: list[str], timeout: float = 120, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def moorage_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return run([sys.executable, "-m", "moorage.cli.main", *args], env=env)


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"sha256:{digest}", len(data)


def build_oci_layout(layout: Path, tag: str, message: str = "hello from moorage\n") -> Path:
    """A one-layer linux image (for this machine's architecture) as an OCI image layout."""
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mode, info.mtime = len(message), 0o644, 0
        tar.addfile(info, io.BytesIO(message.encode()))
    raw_layer = tar_bytes.getvalue()
    layer = gzip.compress(raw_layer, mtime=0)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    config = json.dumps({
        "architecture": arch, "os": "linux", "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(raw_layer).hexdigest()}"]},
    }).encode()
    layer_digest, layer_size = _blob(layout, layer)
    config_digest, config_size = _blob(layout, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                   "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest,
                    "size": layer_size}],
    }).encode()
    manifest_digest, manifest_size = _blob(layout, manifest)
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": manifest_size,
                       "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }))
    return layout
