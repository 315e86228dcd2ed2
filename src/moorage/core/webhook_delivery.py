"""The webhook worker: every server process runs one. When the outbox holds events or a delivery is due, it
fans events out to deliveries, claims a batch of due ones and sends them; the database decides who sends
what (``moorage.meta.webhooks``), so any number of workers and replicas share the work without a leader.

An idle worker only reads (one cheap query per poll); a request never waits for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from moorage.core.webhooks import RetryPolicy, body_for, headers_for
from moorage.meta.webhooks import ERROR, PENDING, SUCCESS, Delivery, WebhookModel

log = logging.getLogger("moorage.webhooks")

#: Deliveries one worker sends at once.
BATCH = 32

#: How often a worker forgets old history (any worker may: it is the same delete wherever it runs).
PURGE_EVERY_SECONDS = 3600.0

#: Called after each attempt with the event type and whether the receiver took it (for metrics).
Observer = Callable[[str, bool], None]


def _describe(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc) or type(exc).__name__


def _stamp(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class WebhookWorker:
    def __init__(self, model: WebhookModel, holder: str, registry_host: str, retry: RetryPolicy,
                 timeout: float, poll_seconds: float = 1.0, observe: Observer | None = None,
                 keep_history_seconds: float = 30 * 86400.0) -> None:
        self.model = model
        self.store = model.store
        self.holder = holder
        self.registry_host = registry_host
        self.retry = retry
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        self.observe = observe
        self.keep_history_seconds = keep_history_seconds
        self._purged_at = time.monotonic()
        self._clients: dict[bool, httpx.AsyncClient] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="moorage-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for client in self._clients.values():
            await client.aclose()
        self._clients = {}

    async def _loop(self) -> None:
        unreachable = False
        while True:
            busy = False
            try:
                busy = await self.run_once()
                unreachable = False
            except Exception as exc:  # the database restarting: try again at the next poll
                if not unreachable:
                    log.warning("webhook delivery paused: %s", _describe(exc))
                unreachable = True
            if not busy:
                await asyncio.sleep(self.poll_seconds)

    async def run_once(self) -> bool:
        """Fan out what the outbox holds and send one batch of due deliveries; whether there was anything."""
        if time.monotonic() - self._purged_at > PURGE_EVERY_SECONDS:
            self._purged_at = time.monotonic()
            await self.store.run(self.model.purge, time.time() - self.keep_history_seconds)
        if not await self.store.query(self.model.has_work, time.time()):
            return False
        moved = await self.store.run(self.model.fan_out, self.registry_host)
        deliveries = await self.store.run(self.model.claim, self.holder, self.timeout, BATCH)
        await asyncio.gather(*(self._deliver(d) for d in deliveries))
        return bool(moved or deliveries)

    def _client(self, verify: bool) -> httpx.AsyncClient:
        client = self._clients.get(verify)
        if client is None:
            # No redirects: a receiver's redirect must not carry the payload (and its signature) elsewhere.
            client = self._clients[verify] = httpx.AsyncClient(verify=verify, follow_redirects=False)
        return client

    async def _deliver(self, delivery: Delivery) -> None:
        target = delivery.target
        now = time.time()
        attempt = delivery.run_count + 1
        ok = False
        if target is None:
            detail = "the target was removed from the policy; not sent"
        else:
            source = f"/projects/{delivery.project_id}/webhook/policies/{delivery.policy_id}"
            body, content_type = body_for(target, delivery.event_id, delivery.payload, source)
            headers = headers_for(target, delivery.event_id, delivery.event_type, body, content_type, now)
            try:
                response = await self._client(not target.skip_cert_verify).post(
                    target.address, content=body, headers=headers, timeout=delivery.timeout)
                ok = 200 <= response.status_code < 300
                detail = f"HTTP {response.status_code}"
            except httpx.TimeoutException:
                detail = f"no answer within {delivery.timeout:g} s"
            except httpx.HTTPError as exc:
                detail = f"{type(exc).__name__}: {exc}"[:500]
        if ok:
            status, due, outcome = SUCCESS, None, "delivered"
        elif target is None:
            status, due, outcome = ERROR, None, "given up"
        else:
            due = self.retry.next_attempt(attempt, time.time(), delivery.created_at)
            status = PENDING if due is not None else ERROR
            outcome = f"retry at {_stamp(due)}" if due is not None else "given up (too old to retry)"
        line = f"{_stamp(now)} attempt {attempt} to {target.address if target else '-'}: {detail}; {outcome}\n"
        if self.observe is not None:
            self.observe(delivery.event_type, ok)
        try:
            recorded = await self.store.run(self.model.finish, delivery.task_id, self.holder, status, due, line)
        except Exception as exc:
            # The claim runs out and the delivery is made again: at least once, never lost.
            log.warning("could not record webhook delivery %d: %s", delivery.task_id, _describe(exc))
            return
        if not recorded:
            log.warning("webhook delivery %d outlived its claim; another worker has retried it", delivery.task_id)
