"""``moorage serve``: run the registry server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from moorage.settings import load_settings


def serve(
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (blobs, database, keys). "
                                                  "Env: MOORAGE_DATA_DIR. Default: ~/.local/share/moorage")] = None,
    listen: Annotated[str | None, typer.Option(help="HOST:PORT to bind. Env: MOORAGE_LISTEN. "
                                               "Default: 127.0.0.1:5000")] = None,
    plain_http: Annotated[bool | None, typer.Option("--plain-http/--tls", help="Serve plain HTTP "
                                                   "instead of HTTPS. Env: MOORAGE_PLAIN_HTTP")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes; 0 = one per core. "
                                                "Env: MOORAGE_WORKERS")] = None,
    config: Annotated[Path | None, typer.Option(help="TOML settings file. Env: MOORAGE_CONFIG. "
                                                "Default: <data-dir>/moorage.toml if present")] = None,
    hostname: Annotated[list[str] | None, typer.Option(help="A DNS name nodes use to reach the registry; "
                                                       "the certificate covers it (repeatable). "
                                                       "Env: MOORAGE_TLS_HOSTNAMES (JSON list)")] = None,
    ip: Annotated[list[str] | None, typer.Option(help="An IP address nodes use to reach the registry; the "
                                                 "certificate covers it (repeatable). "
                                                 "Env: MOORAGE_TLS_IPS (JSON list)")] = None,
) -> None:
    """Start the registry (embedded default: SQLite + files under one data directory)."""
    from moorage.server import run

    settings = load_settings(data_dir=data_dir, listen=listen, plain_http=plain_http,
                             workers=workers, config=config, tls_hostnames=hostname or None,
                             tls_ips=ip or None)
    run(settings)


def register(app: typer.Typer) -> None:
    app.command()(serve)
