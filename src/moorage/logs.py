"""Structured logs: one JSON line per request, secrets never included."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": round(record.created, 3), "level": record.levelname.lower(),
                                 "logger": record.name}
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger("moorage")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class AccessLogMiddleware:
    """One JSON line per request: method, path (never the query, which may carry secrets), status,
    duration, client. Written straight to stderr with one syscall: at thousands of requests per second
    the logging module's machinery would cost a third of the server's throughput."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            client = scope.get("client")
            line = (f'{{"time": {time.time():.3f}, "level": "info", "logger": "moorage.access", '
                    f'"method": {json.dumps(scope["method"])}, "path": {json.dumps(scope["path"])}, '
                    f'"status": {status}, "ms": {(time.perf_counter() - start) * 1000:.2f}, '
                    f'"client": {json.dumps(client[0] if client else None)}}}\n')
            os.write(2, line.encode())
