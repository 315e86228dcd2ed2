"""What every server process runs beside its requests, started and stopped with it: the webhook worker
(deliveries from the outbox) and the metrics' usage cache, plus the database pool's instruments."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import event

from moorage.core.schedule import holder_id
from moorage.core.webhook_delivery import WebhookWorker
from moorage.core.webhooks import RetryPolicy
from moorage.meta.store import MetaStore
from moorage.metrics import instruments
from moorage.metrics.http import flush_periodically
from moorage.metrics.usage import UsageCache
from moorage.services import Services
from moorage.settings import Settings


def registry_host(settings: Settings) -> str:
    """How receivers should write the registry in an image reference (``resource_url``)."""
    if settings.public_url:
        return urlsplit(settings.public_url).netloc or settings.public_url
    return settings.listen


def _instrument_pool(store: MetaStore) -> None:
    def checkout(*_: Any) -> None:
        instruments.DB_CONNECTIONS_IN_USE.inc()

    def checkin(*_: Any) -> None:
        instruments.DB_CONNECTIONS_IN_USE.dec()

    def error(*_: Any) -> None:
        instruments.DB_ERRORS.inc()

    event.listen(store.engine, "checkout", checkout)
    event.listen(store.engine, "checkin", checkin)
    event.listen(store.engine, "handle_error", error)


@dataclass
class Background:
    webhooks: WebhookWorker
    usage: UsageCache
    flusher: asyncio.Task[None]

    async def stop(self) -> None:
        self.flusher.cancel()  # it flushes what it has on the way out
        with contextlib.suppress(asyncio.CancelledError):
            await self.flusher
        await self.webhooks.stop()
        await self.usage.close()


def start(services: Services) -> Background:
    settings = services.settings
    _instrument_pool(services.store)
    services.gc.observe = instruments.gc_finished
    retry = RetryPolicy(settings.webhook_retry_base_seconds, settings.webhook_retry_max_seconds,
                        settings.webhook_give_up_hours * 3600)
    worker = WebhookWorker(services.webhooks, holder_id(), registry_host(settings), retry,
                           settings.webhook_timeout_seconds, settings.webhook_poll_seconds,
                           observe=instruments.webhook_attempt,
                           keep_history_seconds=settings.webhook_history_days * 86400)
    worker.start()
    flusher = asyncio.create_task(flush_periodically(), name="moorage-metrics-flush")
    return Background(worker, UsageCache(services.store, settings.metrics_usage_refresh_seconds), flusher)
