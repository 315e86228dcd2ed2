"""Registry events (push, pull, delete) for whoever listens: audit log, webhooks, metrics.

Handlers emit after the fact; a sink must never fail the request that produced the event.
"""

from __future__ import annotations

import logging
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


class NullSink:
    async def emit(self, event: Event) -> None:
        return None


class SafeSink:
    """Wraps a sink so that its failures are logged, never raised into a request."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    async def emit(self, event: Event) -> None:
        try:
            await self.sink.emit(event)
        except Exception:
            log.exception("event sink failed for %s %s", event.action, event.repository)
