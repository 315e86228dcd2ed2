"""Changes every process must hear of at once: what keeps the per-process caches right across workers and replicas.

A cache remembers what it read together with the *version* of its topic before the read, and trusts the entry
only while that version has not moved. A writer announces the topic inside the transaction of the change, and
the version moves in every process sharing the store once it commits, never before:

- PostgreSQL (replicas on many hosts): ``NOTIFY moorage_changes, '<topic>'`` in the writing transaction, which
  PostgreSQL delivers on commit only. Each process listens on one connection of its own; a version is a count
  of the notifications received. A cache that must be exact (an account's standing) first waits for a *fence*:
  a round trip on that connection started after the request arrived, shared by all requests arriving while the
  previous one is under way, after which every change committed before the request has been heard. While the
  listening connection is down, nothing cached is trusted (every version is new on every call) and it is remade
  in the background; once it listens again every topic moves, since changes made meanwhile went unheard.
- SQLite (one host, several worker processes): a page of counters in a file beside the database, mapped into
  every process. A commit adds one to its topics' counters after it has committed; reading a version is a
  memory read.

Versions per topic, not per key: the announced changes (an account disabled, a signing key replaced) are rare
next to the reads the caches save (every bearer request), so flushing a topic's whole cache costs nothing
worth a finer scheme. Measured on this machine (PostgreSQL, 2 workers, bearer manifest GETs by tag, 64
connections): reading the account's standing from the database on every request took throughput from ~3,000/s
to ~1,900/s; under load a fence is shared by several requests, and it reads no table.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import mmap
import os
import struct
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

log = logging.getLogger("moorage.changes")

#: Accounts' standing: a user or robot disabled, deleted, expired, or its credentials or permissions changed.
ACCOUNTS = "accounts"
#: Token signing keys added or burned.
SIGNING_KEYS = "signing-keys"
#: Every topic, in the order of their counters in the shared page (append only: the page outlives versions).
TOPICS = (ACCOUNTS, SIGNING_KEYS)

CHANNEL = "moorage_changes"
#: How the listening connections show in ``pg_stat_activity``.
LISTENER_NAME = "moorage changes listener"
#: ``conn.info`` key of the callbacks a write transaction runs once it has committed (``MetaStore.write``).
AFTER_COMMIT = "moorage_after_commit"

_PAGE = 4096
_SLOT = struct.Struct("<Q")
# Seconds between attempts to listen again after the connection was lost.
_RETRY_SECONDS = 2.0
# A fence not answered by then (PostgreSQL unreachable but the connection not yet known dead): the request goes on
# without caches.
_FENCE_SECONDS = 5.0


class ChangeFeed(Protocol):
    def announce(self, conn: sa.Connection, topic: str) -> None:
        """Inside a ``MetaStore.write`` transaction: ``topic`` moves everywhere once it commits."""

    async def fence(self) -> bool:
        """Wait until this process has heard of every change committed before the call; False when it cannot
        tell (not listening): trust no cache then."""

    def version(self, topic: str) -> int:
        """The topic's version as this process knows it; equal versions mean nothing announced in between."""

    def close(self) -> None:
        """Stop listening (nothing cached is trusted afterwards)."""


def _after_commit(conn: sa.Connection, callback: Any) -> None:
    conn.info.setdefault(AFTER_COMMIT, []).append(callback)


class SharedPageFeed:
    """Counters in a file mapped by every process on the host (SQLite's workers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < _PAGE:
                os.ftruncate(fd, _PAGE)
            self._map = mmap.mmap(fd, _PAGE)
        finally:
            os.close(fd)
        self._lock = threading.Lock()

    def announce(self, conn: sa.Connection, topic: str) -> None:
        offset = _offset(topic)
        _after_commit(conn, lambda: self._bump(offset))

    def _bump(self, offset: int) -> None:
        # The file lock orders the read-add-write of concurrent writers in all processes; readers take none.
        fd = os.open(self.path, os.O_RDWR)
        try:
            with self._lock:
                fcntl.flock(fd, fcntl.LOCK_EX)
                _SLOT.pack_into(self._map, offset, _SLOT.unpack_from(self._map, offset)[0] + 1)
        finally:
            os.close(fd)  # closing drops the lock

    async def fence(self) -> bool:
        return True  # the counters are bumped before the writer answers: nothing can be in flight

    def version(self, topic: str) -> int:
        return int(_SLOT.unpack_from(self._map, _offset(topic))[0])

    def close(self) -> None:
        with contextlib.suppress(ValueError, BufferError):
            self._map.close()


class LocalFeed:
    """One process alone (an in-memory database): versions in memory, moved after commit."""

    def __init__(self) -> None:
        self._versions = dict.fromkeys(TOPICS, 0)

    def announce(self, conn: sa.Connection, topic: str) -> None:
        _offset(topic)
        _after_commit(conn, lambda: self._versions.__setitem__(topic, self._versions[topic] + 1))

    async def fence(self) -> bool:
        return True

    def version(self, topic: str) -> int:
        return self._versions[topic]

    def close(self) -> None:
        pass


class PostgresFeed:
    """LISTEN on a connection of this process's own, read by its event loop; NOTIFY in the writers' transactions.

    A thread makes the connection (connecting blocks) and hands it to the loop, which reads notifications as
    they come and sends the fences' round trips on it: one reader, so no lock and no thread hop per fence.
    """

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._versions = dict.fromkeys(TOPICS, 0)
        self._conn: Any = None  # psycopg.Connection while listening, used by the loop only
        self._loop: asyncio.AbstractEventLoop | None = None
        # While not listening every call gets a version never handed out before: no cache entry matches it.
        self._unheard = itertools.count(-1, -1)
        self._stopped = threading.Event()
        self._wanted = threading.Event()  # set while the loop has no connection
        self._thread: threading.Thread | None = None
        self._fences: _Fences | None = None
        self._probe: asyncio.Future[bool] | None = None
        self._fd = -1  # the listening connection's socket, while the loop reads it

    def announce(self, conn: sa.Connection, topic: str) -> None:
        _offset(topic)
        conn.execute(sa.text("SELECT pg_notify(:channel, :topic)"), {"channel": CHANNEL, "topic": topic})

    def version(self, topic: str) -> int:
        if self._thread is None:
            with contextlib.suppress(RuntimeError):  # called off the loop: only a loop can listen
                self._start(asyncio.get_running_loop())
        if self._conn is None:
            return next(self._unheard)
        return self._versions[topic]

    async def fence(self) -> bool:
        """One round trip on the listening connection, shared by every request that arrives while the previous
        one is under way. PostgreSQL signals the listening sessions while it commits, before the writer hears
        that its commit succeeded, and a session sends the notifications it was signalled about before it
        answers a query; so once a round trip sent after a request arrived is answered, every change committed
        before the request is heard. Notifications alone arrive a little later, and under load (seen: 3 of 120
        requests on a busy 2-core machine) after a client has already asked another replica."""
        loop = asyncio.get_running_loop()
        self._start(loop)
        if loop is not self._loop:
            return False  # another loop than the one listening (never in a server): trust nothing
        if self._fences is None:
            self._fences = _Fences(loop, self._round_trip)
        try:
            return await asyncio.wait_for(self._fences.wait(), _FENCE_SECONDS)
        except TimeoutError:
            return False

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        # Listening starts in the first process (and loop) that asks: a process that only announces (a CLI
        # command) never opens the connection, and none is inherited across a fork.
        if self._thread is None:
            self._loop = loop
            self._wanted.set()
            self._thread = threading.Thread(target=self._connector, name="moorage-changes", daemon=True)
            self._thread.start()

    async def _round_trip(self) -> bool:
        import psycopg

        conn = self._conn
        if conn is None or self._loop is None:
            return False
        self._probe = answer = self._loop.create_future()
        try:
            conn.pgconn.send_query(b"SELECT 1")
            conn.pgconn.flush()
        except psycopg.Error as error:
            self._lost(error)
        return await answer

    def _on_readable(self) -> None:
        import psycopg

        pgconn = self._conn.pgconn
        try:
            pgconn.consume_input()
            done = False
            if self._probe is not None:
                while not pgconn.is_busy():
                    if pgconn.get_result() is None:  # ReadyForQuery: every notification before it is parsed
                        done = True
                        break
            while (notice := pgconn.notifies()) is not None:
                self._heard(notice.extra.decode(errors="replace"))
        except psycopg.Error as error:
            self._lost(error)
            return
        if done and self._probe is not None:
            probe, self._probe = self._probe, None
            if not probe.done():
                probe.set_result(True)

    def _heard(self, topic: str) -> None:
        if topic in self._versions:
            self._versions[topic] += 1

    def _lost(self, error: Exception) -> None:
        log.warning("stopped hearing of changes from other replicas (%s); caches are off until it is back", error)
        conn, self._conn = self._conn, None
        if conn is not None and self._loop is not None:
            # By the number kept: a lost connection no longer tells its socket, and a reader left registered
            # would swallow the next connection's, which gets the same number.
            self._loop.remove_reader(self._fd)
            with contextlib.suppress(Exception):
                conn.close()
        probe, self._probe = self._probe, None
        if probe is not None and not probe.done():
            probe.set_result(False)
        self._wanted.set()

    def _adopt(self, conn: Any) -> None:
        """On the loop: start reading the new connection."""
        if self._stopped.is_set() or self._loop is None:
            conn.close()
            return
        # Whatever changed while nobody listened was not heard: every topic moves.
        for topic in self._versions:
            self._versions[topic] += 1
        self._fd = conn.pgconn.socket
        self._loop.add_reader(self._fd, self._on_readable)
        self._conn = conn

    def _connector(self) -> None:
        import psycopg

        while not self._stopped.is_set():
            if not self._wanted.wait(_RETRY_SECONDS):
                continue
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5, keepalives=1,
                                       keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
                                       application_name=LISTENER_NAME)
                conn.execute(f"LISTEN {CHANNEL}")
            except Exception as error:  # the database away: retried, and requests meanwhile run uncached
                log.warning("cannot listen for changes from other replicas (%s); retrying", error)
                self._stopped.wait(_RETRY_SECONDS)
                continue
            self._wanted.clear()
            loop = self._loop
            try:
                assert loop is not None
                loop.call_soon_threadsafe(self._adopt, conn)
            except (RuntimeError, AssertionError):  # the loop has closed: the process is stopping
                conn.close()
                return

    def close(self) -> None:
        self._stopped.set()
        self._wanted.set()
        conn, self._conn = self._conn, None
        if conn is not None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(Exception):
                    loop.remove_reader(self._fd)
            with contextlib.suppress(Exception):
                conn.close()


class _Fences:
    """Round trips shared by the requests of one event loop: a request waits for the first round trip that starts
    after it arrived (one already under way may have been sent before the change it must see committed)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, probe: Callable[[], Coroutine[Any, Any, bool]]) -> None:
        self.loop = loop
        self._probe = probe
        self._running = False
        self._next: asyncio.Future[bool] | None = None

    async def wait(self) -> bool:
        if self._running:
            if self._next is None:
                self._next = self.loop.create_future()
            waiting = self._next
        else:
            waiting = self.loop.create_future()
            self._start(waiting)
        # Shielded: a request that goes away must not cancel the round trip others wait for.
        return await asyncio.shield(waiting)

    def _start(self, answer: asyncio.Future[bool]) -> None:
        self._running = True
        task = self.loop.create_task(self._probe())
        task.add_done_callback(lambda done: self._finished(done, answer))

    def _finished(self, done: asyncio.Task[bool], answer: asyncio.Future[bool]) -> None:
        self._running = False
        heard = not done.cancelled() and done.exception() is None and done.result()
        if not answer.done():
            answer.set_result(heard)
        waiting, self._next = self._next, None
        if waiting is not None:
            self._start(waiting)


def _offset(topic: str) -> int:
    try:
        return TOPICS.index(topic) * _SLOT.size
    except ValueError:
        raise ValueError(f"unknown change topic {topic!r}") from None


def open_feed(url: sa.URL) -> ChangeFeed:
    """The feed for a store at ``url``."""
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return LocalFeed()
        return SharedPageFeed(Path(f"{database}.changes"))
    return PostgresFeed(url.set(drivername="postgresql").render_as_string(hide_password=False))
