"""Start Granian with the registry app: prepare the data directory and schema once, then fork workers."""

from __future__ import annotations

import os

from rich.console import Console

from moorage.app import build_context
from moorage.meta.migrate import upgrade
from moorage.settings import Settings

console = Console(stderr=True)


def prepare(settings: Settings) -> None:
    """Once per start, before workers fork: data directory, schema, and clean-up of abandoned uploads."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    context = build_context(settings)
    try:
        upgrade(context.store)
        purged = context.uploads.purge_stale(settings.upload_ttl_hours * 3600)
        if purged:
            console.print(f"moorage: removed {purged} upload(s) untouched for {settings.upload_ttl_hours} h")
    finally:
        context.store.dispose()


def _export(settings: Settings) -> None:
    """Workers build their settings from the environment, so pass the resolved values down."""
    for key, value in settings.model_dump(exclude={"config"}).items():
        os.environ[f"MOORAGE_{key.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)


def run(settings: Settings) -> None:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    prepare(settings)
    _export(settings)
    scheme = "http" if settings.plain_http else "https"
    workers = settings.worker_count
    console.print(f"moorage: serving {scheme}://{settings.listen} from {settings.data_dir} "
                  f"({workers} worker{'s' if workers != 1 else ''}, metadata {settings.database.split(':')[0]})")
    if not settings.plain_http:
        console.print("[yellow]moorage: TLS is not wired yet in this build; pass --plain-http[/yellow]")
        raise SystemExit(2)
    server = Server(
        "moorage.app:create_app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.auto,
        factory=True,
        log_access=False,
        backlog=2048,
    )
    server.serve()
