"""Scheduled work inside ``moorage serve``: run job NAME every INTERVAL, in exactly one process.

Every worker of every replica runs the same loop for every job; a lease in the metadata store
(``moorage.meta.leases``) decides which one does the work, so there is no separate job service and
no leader to configure. The holder renews its lease every third of the lease's length, also while the
job runs, so a run longer than the lease keeps it. When the holder stops, it gives the lease up (or,
killed, lets it expire) and another process takes it at its next renewal and runs the job from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from moorage.meta.leases import JobLeases
from moorage.meta.store import MetaStore

log = logging.getLogger("moorage.schedule")

#: Long enough that a busy database does not cost the holder its lease between renewals; short enough
#: that a killed holder's jobs move to another process within a minute.
LEASE_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Job:
    #: The lease's name: one holder per name across every process sharing the metadata store.
    name: str
    #: Seconds between the end of one run and the start of the next.
    interval: float
    run: Callable[[], Awaitable[object]]


def holder_id() -> str:
    """This process, as distinct from every other worker here and every other replica."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


def _describe(exc: BaseException) -> str:
    # The driver's own error, not SQLAlchemy's rendering of it, which carries the statement.
    return str(getattr(exc, "orig", None) or exc) or type(exc).__name__


class Scheduler:
    def __init__(self, store: MetaStore, jobs: Iterable[Job], lease_seconds: float = LEASE_SECONDS,
                 holder: str | None = None) -> None:
        self.store = store
        self.leases = JobLeases(store)
        self.jobs = list(jobs)
        self.lease_seconds = lease_seconds
        self.holder = holder or holder_id()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start one loop per job on the running event loop."""
        self._tasks = [asyncio.create_task(self._loop(job), name=f"moorage-job-{job.name}") for job in self.jobs]

    async def stop(self) -> None:
        """Cancel the loops (a run in progress is cancelled too) and give up the leases held."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for job in self.jobs:
            try:
                await self.store.run(self.leases.release, job.name, self.holder)
            except Exception as exc:  # it expires on its own; the shutdown goes on
                log.warning("could not give up the lease of scheduled job %s: %s", job.name, _describe(exc))

    async def _claim(self, job: Job) -> bool:
        return await self.store.run(self.leases.acquire, job.name, self.holder, self.lease_seconds)

    async def _loop(self, job: Job) -> None:
        beat = self.lease_seconds / 3
        # The first run comes an interval after the start: a start does its own clean-up first.
        due = time.monotonic() + job.interval
        unreachable = False
        while True:
            holding = False
            try:
                holding = await self._claim(job)
                unreachable = False
            except Exception as exc:
                if not unreachable:  # one line when the store goes away, not one per beat
                    log.warning("scheduled job %s: cannot take its lease: %s", job.name, _describe(exc))
                unreachable = True
            if holding and time.monotonic() >= due:
                try:
                    await self._run_holding(job)
                except Exception as exc:
                    log.warning("scheduled job %s failed (next try in %g s): %s", job.name, job.interval,
                                _describe(exc))
                due = time.monotonic() + job.interval
            # The holder wakes for its next run; the others only to check whether the lease came free.
            pause = min(beat, max(due - time.monotonic(), 0.0)) if holding else beat
            await asyncio.sleep(pause)

    async def _run_holding(self, job: Job) -> None:
        """Run the job, renewing the lease while it runs."""
        run = asyncio.ensure_future(job.run())
        warned = False
        try:
            while not run.done():
                await asyncio.wait({run}, timeout=self.lease_seconds / 3)
                if run.done():
                    break
                try:
                    held = await self._claim(job)
                except Exception:
                    held = False
                if not held and not warned:
                    log.warning("scheduled job %s lost its lease while running (metadata store slow or "
                                "unreachable); another process may run it at the same time", job.name)
                    warned = True
        finally:
            if not run.done():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run
        run.result()
