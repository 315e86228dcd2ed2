"""The metadata store: one engine, read and write transactions, and a bridge to the event loop.

SQLite (the embedded default) runs in WAL mode so readers never wait for the writer; every write
transaction starts with ``BEGIN IMMEDIATE`` so two processes never deadlock upgrading a read lock.
PostgreSQL needs none of that and gets plain transactions.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import importlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlalchemy import event

from moorage.meta.changes import AFTER_COMMIT, ChangeFeed, open_feed

if TYPE_CHECKING:
    from moorage.meta.plain_postgres import PlainPostgres

T = TypeVar("T")

# Connections each process keeps open to PostgreSQL, and at most as many store calls at once: past the
# pool, SQLAlchemy opens a connection per call and closes it after, and PostgreSQL forks a backend for
# each (manifest GETs at 64 connections went from 1,000/s with 40 threads to 1,600/s with this limit).
_PG_POOL_SIZE = 8

# Any fixed number names the lock in PostgreSQL's advisory-lock space; these are the bytes of "moorage".
_SETUP_LOCK_KEY = 0x6D6F6F72616765


def _configure_sqlite(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver; "begin" below issues our own BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Reads run in autocommit: each statement sees a consistent snapshot, and skipping
        # BEGIN/COMMIT halves the cost of the hot single-row lookups.
        if connection.get_execution_options().get("moorage_write"):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


class MetaStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self._local = threading.local()
        self._postgres: PlainPostgres | None = None
        if self.is_sqlite:
            self.engine = sa.create_engine(url, poolclass=sa.pool.QueuePool, pool_size=8, max_overflow=32,
                                           connect_args={"check_same_thread": False, "timeout": 30})
            _configure_sqlite(self.engine)
        else:
            self.engine = sa.create_engine(url, pool_size=_PG_POOL_SIZE, max_overflow=32, pool_pre_ping=True)
            from moorage.meta.plain_postgres import PlainPostgres

            self._postgres = PlainPostgres(self.engine.url, _PG_POOL_SIZE)
        self._limiter: anyio.CapacityLimiter | None = None
        # Only the dialect in use: PostgreSQL's alone costs a SQLite install 2 MB in every worker.
        self._dialect = importlib.import_module(f"sqlalchemy.dialects.{self.engine.dialect.name}")
        #: Announces the changes other processes' caches must hear of, and tells the versions those caches
        #: check (``moorage.meta.changes``).
        self.changes: ChangeFeed = open_feed(self.engine.url)

    def fetch_one(self, sql: str, params: dict[str, Any]) -> Any:
        """One row of a hot, single-statement read written as SQL with ``:name`` parameters.

        This bypasses SQLAlchemy's statement machinery (on SQLite ~200 µs against the query's ~7 µs)
        through plain connections in autocommit mode, so every statement reads the latest committed
        state: one per thread on SQLite, a small pool on PostgreSQL (``moorage.meta.plain_postgres``).
        """
        if self._postgres is not None:
            return self._postgres.fetch(sql, params, one=True)
        return self._raw().execute(sql, params).fetchone()

    def fetch_all(self, sql: str, params: dict[str, Any]) -> list[Any]:
        """Every row of a hot read, as ``fetch_one``: a listing of 10,000 rows takes SQLAlchemy a row
        at a time, several times longer than the query itself."""
        if self._postgres is not None:
            return self._postgres.fetch(sql, params, one=False)
        return self._raw().execute(sql, params).fetchall()

    def _raw(self) -> sqlite3.Connection:
        raw: sqlite3.Connection | None = getattr(self._local, "raw", None)
        if raw is None:
            raw = sqlite3.connect(self.engine.url.database or "", isolation_level=None, check_same_thread=False)
            raw.execute("PRAGMA busy_timeout=30000")
            self._local.raw = raw
        return raw

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[sa.Connection]:
        """One consistent view for many statements, blocking no writer: reads otherwise run without a transaction
        (each statement its own view); SQLite: a deferred transaction in WAL mode; PostgreSQL: repeatable read."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN")
                try:
                    yield conn
                finally:
                    conn.exec_driver_sql("COMMIT")
            else:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn

    @contextmanager
    def write(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(moorage_write=True)
            conn.info.pop(AFTER_COMMIT, None)  # left by a transaction that rolled back
            with conn.begin():
                yield conn
            for callback in conn.info.pop(AFTER_COMMIT, ()):
                callback()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking store work (writes, or anything that may wait on a lock) off the event loop."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._calls())

    def _calls(self) -> anyio.CapacityLimiter | None:
        """On PostgreSQL, no more calls at once than pooled connections (made in the event loop, on first use)."""
        if self.is_sqlite:
            return None
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(_PG_POOL_SIZE)
        return self._limiter

    async def query(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a short read. On SQLite in WAL mode a read never waits for a writer and takes
        microseconds, so it runs on the loop: a thread hop would cost more than the query."""
        if self.is_sqlite:
            return fn(*args, **kwargs)
        return await self.run(fn, *args, **kwargs)

    def insert_ignore(self, table: sa.Table) -> Any:
        """An INSERT that does nothing when the row exists: concurrent pushes of the same thing agree."""
        return self._dialect.insert(table).on_conflict_do_nothing()

    def insert_new(self, conn: sa.Connection, table: sa.Table, returning: sa.Column[Any], /,
                   **values: Any) -> Any | None:
        """Insert a row unless it would repeat a unique value; returns the new row's ``returning``, or None.

        A check before the insert is not enough on PostgreSQL: two transactions both find the name
        free, and the second insert fails. Here the second waits for the first and then inserts nothing.
        """
        return conn.execute(self.insert_ignore(table).values(**values).returning(returning)).scalar()

    def upsert(self, table: sa.Table, keys: list[str], update_columns: list[str]) -> Any:
        """An INSERT that overwrites ``update_columns`` of an existing row with the same ``keys``."""
        stmt = self._dialect.insert(table)
        return stmt.on_conflict_do_update(index_elements=keys,
                                          set_={c: stmt.excluded[c] for c in update_columns})

    def lock_digest(self, conn: sa.Connection, digest: str) -> None:
        """Hold ``digest`` for the rest of this write transaction against every other transaction that holds it
        (a push committing the blob, garbage collection deleting it). SQLite needs nothing: its write
        transactions already run one at a time."""
        if not self.is_sqlite:
            key = int.from_bytes(hashlib.sha256(digest.encode()).digest()[:8], "big", signed=True)
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    @contextmanager
    def setup_lock(self) -> Iterator[None]:
        """Held by one process at a time among all that share this store, replicas included: for the
        work of a start (schema, first account, signing key) that servers starting together would race on."""
        if self.is_sqlite:
            # Every process that shares a SQLite file runs on this host, so a lock file beside it will do.
            fd = os.open(f"{self.engine.url.database}.setup-lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)
            return
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _SETUP_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                # A session's advisory lock outlives its transactions; the pool would keep it held.
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _SETUP_LOCK_KEY})
                conn.commit()

    def compact(self) -> None:
        """Rewrite the database so that nothing deleted lingers in its files (SQLite: VACUUM, then the WAL
        emptied; PostgreSQL: VACUUM FULL)."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            if self.is_sqlite:
                conn.exec_driver_sql("VACUUM")
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                conn.exec_driver_sql("VACUUM FULL")

    def dispose(self) -> None:
        self.changes.close()
        if self._postgres is not None:
            self._postgres.close()
        self.engine.dispose()
