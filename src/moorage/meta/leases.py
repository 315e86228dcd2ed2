"""Job leases: which process, among every worker and replica sharing the metadata store, runs a job.

A lease is one row per job. Taking it is a single conditional UPDATE (the row is free when it has
expired or is already ours), or an INSERT when no process has ever held it; either statement is atomic
on SQLite (one writer at a time) and on PostgreSQL (the second UPDATE waits for the first and then
re-checks its condition against the new row; the second INSERT waits and inserts nothing).
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from moorage.meta.schema import job_leases
from moorage.meta.store import MetaStore


class JobLeases:
    def __init__(self, store: MetaStore) -> None:
        self.store = store
        self._claim = job_leases.update().where(
            job_leases.c.name == sa.bindparam("job"),
            sa.or_(job_leases.c.expires_at < sa.bindparam("now"), job_leases.c.holder == sa.bindparam("me")),
        ).values(holder=sa.bindparam("me"), expires_at=sa.bindparam("until"))

    def acquire(self, job: str, holder: str, seconds: float, now: float | None = None) -> bool:
        """Take or renew ``job``'s lease for ``seconds``; True when ``holder`` now holds it."""
        now = time.time() if now is None else now
        with self.store.write() as conn:
            taken = conn.execute(self._claim, {"job": job, "now": now, "me": holder, "until": now + seconds})
            if taken.rowcount > 0:
                return True
            return self.store.insert_new(conn, job_leases, job_leases.c.name,
                                         name=job, holder=holder, expires_at=now + seconds) is not None

    def release(self, job: str, holder: str) -> None:
        """Give the lease up early (a clean shutdown), so another process need not wait for it to expire."""
        with self.store.write() as conn:
            conn.execute(job_leases.update().where(job_leases.c.name == job, job_leases.c.holder == holder)
                         .values(expires_at=0.0))

    def holder(self, job: str, now: float | None = None) -> str | None:
        """Who holds ``job``'s lease right now, if anyone."""
        now = time.time() if now is None else now
        with self.store.read() as conn:
            return conn.execute(sa.select(job_leases.c.holder).where(
                job_leases.c.name == job, job_leases.c.expires_at >= now)).scalar()
