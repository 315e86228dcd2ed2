"""The lean supervisor ``moorage serve`` execs into: Granian alone, forking workers that each build
the app (``moorage.app:create_app``) from the settings ``serve`` exported to the environment.

Usage (internal): ``python -m moorage.launch HOST PORT WORKERS [CERT KEY MIN_TLS]``, MIN_TLS ``tls1.2`` or
``tls1.3``. rustls offers TLS 1.2 only with ECDHE key exchange and AEAD ciphers (AES-GCM, ChaCha20-Poly1305),
and prefers TLS 1.3 whenever the client speaks it.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from granian.constants import Interfaces, Loops, SSLProtocols
from granian.http import HTTP1Settings
from granian.server import Server

# How much one read off a connection may take (hyper's default is 408 KiB). Each read of a request
# body is one hop from Granian's threads to the event loop: at 1 MiB a blob push makes 2.5 times fewer
# and measured 10 to 20% faster. Larger gained a little more speed but cost ~15 MB of peak RSS per extra MiB
# (buffers in flight), and this also bounds a request's headers (Go's default is 1 MiB too).
_READ_LIMIT = 1024 * 1024


def _metrics_dir() -> Path:
    """A fresh directory for the workers' Prometheus values (prometheus_client's multiprocess mode), set in
    the environment before any worker starts: each writes its counters there and a scrape adds them up."""
    path = Path(tempfile.mkdtemp(prefix="moorage-metrics-"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def main(argv: list[str]) -> None:
    host, port, workers, *tls = argv
    metrics_dir = _metrics_dir()
    try:
        _serve(host, port, workers, tls)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _serve(host: str, port: str, workers: str, tls: list[str]) -> None:
    Server(
        "moorage.app:create_app",
        address=host,
        port=int(port),
        interface=Interfaces.ASGI,
        workers=int(workers),
        loop=Loops.auto,
        factory=True,
        log_access=False,
        backlog=2048,
        http1_settings=HTTP1Settings(max_buffer_size=_READ_LIMIT),
        ssl_cert=Path(tls[0]) if tls else None,
        ssl_key=Path(tls[1]) if tls else None,
        ssl_protocol_min=SSLProtocols(tls[2]) if tls else SSLProtocols.tls13,
    ).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
