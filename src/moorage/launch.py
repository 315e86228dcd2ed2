"""The lean supervisor ``moorage serve`` execs into: Granian alone, forking workers that each build
the app (``moorage.app:create_app``) from the settings ``serve`` exported to the environment.

Usage (internal): ``python -m moorage.launch HOST PORT WORKERS [CERT KEY]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from granian.constants import Interfaces, Loops
from granian.server import Server


def main(argv: list[str]) -> None:
    host, port, workers, *tls = argv
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
        ssl_cert=Path(tls[0]) if tls else None,
        ssl_key=Path(tls[1]) if tls else None,
    ).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
