"""``GET /metrics``: Prometheus' text format, every worker's counters added up (multiprocess mode) and the
usage values of the last periodic read (``moorage.metrics.usage``), optionally behind a bearer token."""

from __future__ import annotations

import hmac
import os

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from moorage.metrics.http import TALLIES
from moorage.metrics.usage import UsageCache, UsageCollector
from moorage.settings import Settings

#: The classic text format every Prometheus version reads (names here are plain ASCII, so the newer 1.0.0
#: format would say nothing more).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: How long the first scrape after a start waits for the first usage values.
FIRST_READ_WAIT_SECONDS = 2.0


def _counters() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def routes(settings: Settings) -> list[Route]:
    if not settings.metrics_enabled:
        return []
    expected = f"Bearer {settings.metrics_token}".encode() if settings.metrics_token else None

    async def metrics(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, expected):
                return PlainTextResponse("a bearer token is required to read the metrics (metrics_token)\n",
                                         status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        TALLIES.flush()  # this worker's requests up to now, this scrape among them (in flight)
        cache: UsageCache = request.app.state.usage
        usage = CollectorRegistry(auto_describe=False)
        usage.register(UsageCollector(await cache.current(FIRST_READ_WAIT_SECONDS)))
        return Response(_counters() + generate_latest(usage), headers={"Content-Type": CONTENT_TYPE})

    return [Route("/metrics", metrics, methods=["GET"])]
