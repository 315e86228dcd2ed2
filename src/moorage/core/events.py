"""Registry events (push, pull, delete) for whoever listens: audit log, webhooks, metrics.

Handlers emit after the fact and never wait for the listener: events are buffered and handed over in
batches, so a pull storm costs one write per batch instead of one per pull, and a listener's failure
is logged, never raised into a request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("moorage.events")


@dataclass(frozen=True, slots=True)
class Event:
    #: "push", "pull" or "delete"
    action: str
    #: "manifest", "tag" or "blob"
    resource_type: str
    repository: str
    reference: str
    digest: str | None
    operator: str
    client: str | None


class EventSink(Protocol):
    async def emit(self, event: Event) -> None: ...

    async def close(self) -> None: ...


class BatchingSink:
    """Buffers events and gives them to ``write`` in batches, at most ``interval`` seconds late."""

    def __init__(self, write: Callable[[list[Event]], Awaitable[None]], interval: float = 0.1,
                 max_batch: int = 500) -> None:
        self.write = write
        self.interval = interval
        self.max_batch = max_batch
        self._pending: list[Event] = []
        self._flusher: asyncio.Task[None] | None = None

    async def emit(self, event: Event) -> None:
        self._pending.append(event)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.interval)
        await self.flush()

    async def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
            try:
                await self.write(batch)
            except Exception:
                log.exception("could not record %d event(s)", len(batch))

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        await self.flush()
