"""Registry events (push, pull, delete) for whoever listens: audit log, webhooks, metrics.

Handlers emit after the fact and never wait for the listener: events are buffered and handed over in
batches, so a pull storm costs one write per batch instead of one per pull. A listener's failure is
never raised into a request: the batch is kept and tried again later (a database restarting takes a
few seconds), up to a bound.
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
    """Buffers events and gives them to ``write`` in batches, at most ``interval`` seconds late; a batch
    that cannot be written is retried with growing pauses, keeping at most ``max_pending`` events."""

    def __init__(self, write: Callable[[list[Event]], Awaitable[None]], interval: float = 0.1,
                 max_batch: int = 500, max_pending: int = 100_000, max_pause: float = 30.0) -> None:
        self.write = write
        self.interval = interval
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.max_pause = max_pause
        self._pending: list[Event] = []
        self._failures = 0
        self._flusher: asyncio.Task[None] | None = None

    async def emit(self, event: Event) -> None:
        self._pending.append(event)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later(self.interval))

    async def _flush_later(self, pause: float) -> None:
        await asyncio.sleep(pause)
        if not await self.flush():
            self._failures += 1
            self._flusher = asyncio.get_running_loop().create_task(
                self._flush_later(min(self.interval * 2 ** self._failures, self.max_pause)))

    async def flush(self) -> bool:
        """Write what is pending; False when a batch failed (it stays pending)."""
        while self._pending:
            batch = self._pending[:self.max_batch]
            try:
                await self.write(batch)
            except Exception as exc:
                dropped = len(self._pending) - self.max_pending
                if dropped > 0:
                    del self._pending[:dropped]
                    log.error("dropped the %d oldest unrecorded event(s): the listener has failed for too long",
                              dropped)
                # The driver's own message: a database error rendered whole would carry its statement.
                log.warning("could not record %d event(s) yet, will retry: %s", len(self._pending),
                            getattr(exc, "orig", None) or exc)
                return False
            # Events emitted meanwhile were appended behind the batch.
            del self._pending[:len(batch)]
        self._failures = 0
        return True

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        if not await self.flush():
            log.error("stopping with %d event(s) unrecorded", len(self._pending))
