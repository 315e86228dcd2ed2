"""Scheduled jobs run in exactly one process: contenders for a job's lease on one database (each with
its own engine and connections, as separate workers or replicas have) never hold it at once, the holder
keeps it, and another takes over once the holder stops. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.core.schedule import Job, Scheduler
from moorage.meta.leases import JobLeases
from moorage.meta.migrate import upgrade
from moorage.meta.store import MetaStore


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'moorage.db'}"
    else:
        postgres = request.getfixturevalue("postgres")
        url = postgres.new_database(f"leases_{tmp_path.name.replace('-', '_').lower()}"[:60])
    store = MetaStore(url)
    try:
        with store.setup_lock():
            upgrade(store)
    finally:
        store.dispose()
    return url


@pytest.fixture
def stores(database_url: str) -> Iterator[list[MetaStore]]:
    """Separate stores (engines, pools, connections) on the one database, as separate processes have."""
    made = [MetaStore(database_url) for _ in range(6)]
    yield made
    for store in made:
        store.dispose()


def test_a_lease_has_one_holder_until_it_expires_or_is_released(stores: list[MetaStore]) -> None:
    first, second = JobLeases(stores[0]), JobLeases(stores[1])
    now = time.time()
    assert first.acquire("gc", "a", 10, now=now)
    assert not second.acquire("gc", "b", 10, now=now + 1)
    assert first.acquire("gc", "a", 10, now=now + 5), "the holder renews its own lease"
    assert not second.acquire("gc", "b", 10, now=now + 14), "renewed at +5, it lasts until +15"
    assert second.holder("gc", now=now + 14) == "a"
    assert second.acquire("gc", "b", 10, now=now + 16), "expired: free for the taking"
    assert not first.acquire("gc", "a", 10, now=now + 17), "the old holder does not take it back"
    # Leases are per job.
    assert first.acquire("upload-purge", "a", 10, now=now + 17)
    second.release("gc", "b")
    assert first.acquire("gc", "a", 10), "released early: another takes it at once"
    first.release("gc", "b")  # only the holder can release
    assert first.holder("gc") == "a"


def _race(leases: list[JobLeases], at: float) -> list[str]:
    """Every contender asks for the lease at the same moment; returns who got it."""
    start = threading.Barrier(len(leases))
    won: list[str] = []

    def contend(lease: JobLeases, me: str) -> None:
        start.wait()
        if lease.acquire("race", me, 30, now=at):
            won.append(me)

    threads = [threading.Thread(target=contend, args=(lease, f"p{i}")) for i, lease in enumerate(leases)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won


def test_contenders_racing_for_a_free_lease_get_one_winner(stores: list[MetaStore]) -> None:
    """First for a lease nobody has ever held (the INSERT path), then for one that has lapsed (the
    UPDATE path): each time exactly one contender wins."""
    leases = [JobLeases(store) for store in stores]
    now = time.time()
    assert len(_race(leases, now)) == 1
    assert len(_race(leases, now + 60)) == 1


def test_only_the_lease_holder_runs_the_job_and_another_takes_over_when_it_stops(
        stores: list[MetaStore]) -> None:
    runs: list[tuple[str, float, float]] = []

    def job_for(holder: str) -> Job:
        async def work() -> None:
            began = time.monotonic()
            await asyncio.sleep(0.02)
            runs.append((holder, began, time.monotonic()))
        return Job("tick", 0.05, work)

    async def scenario() -> None:
        schedulers = [Scheduler(store, [job_for(f"w{i}")], lease_seconds=2.0, holder=f"w{i}")
                      for i, store in enumerate(stores[:3])]
        for scheduler in schedulers:
            scheduler.start()
        await _until(lambda: len(runs) >= 10)
        holders = {holder for holder, _, _ in runs}
        assert len(holders) == 1, holders
        ordered = sorted(runs, key=lambda run: run[1])
        assert all(a[2] <= b[1] for a, b in itertools.pairwise(ordered)), "runs never overlap"

        first = holders.pop()
        holder = next(s for s in schedulers if s.holder == first)
        await holder.stop()
        stopped_at = time.monotonic()
        await _until(lambda: any(h != first and began > stopped_at for h, began, _ in runs))
        assert not [run for run in runs if run[0] == first and run[1] > stopped_at]
        for scheduler in schedulers:
            await scheduler.stop()

    asyncio.run(scenario())


def test_a_failing_job_logs_a_warning_and_keeps_its_schedule(stores: list[MetaStore],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[float] = []

    async def broken() -> None:
        attempts.append(time.monotonic())
        raise OSError("disk on fire")

    async def scenario() -> None:
        scheduler = Scheduler(stores[0], [Job("broken", 0.05, broken)], lease_seconds=2.0)
        scheduler.start()
        await _until(lambda: len(attempts) >= 3)
        await scheduler.stop()

    with caplog.at_level(logging.WARNING, logger="moorage.schedule"):
        asyncio.run(scenario())
    failures = [r for r in caplog.records if "scheduled job broken failed" in r.getMessage()]
    assert len(failures) >= 2
    assert "disk on fire" in failures[0].getMessage()
    assert all(r.exc_info is None for r in failures), "one line, not a traceback"


async def _until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
