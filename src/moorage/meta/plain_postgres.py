"""Plain psycopg connections for the hot reads on PostgreSQL, the counterpart of SQLite's plain connection
in ``MetaStore``: SQLAlchemy's statement machinery costs more than the query itself (manifest GETs by
tag, 64 connections, both on this machine's 2 cores: 1,600/s through SQLAlchemy, 3,600/s this way).
"""

from __future__ import annotations

import re
import threading
from typing import Any

import psycopg
import sqlalchemy as sa

_NAMED = re.compile(r"(?<!:):(\w+)")


class PlainPostgres:
    """Up to ``size`` idle connections kept for reuse; autocommit, so every statement reads the latest
    committed state, and psycopg prepares a statement on the server once it has run a few times."""

    def __init__(self, url: sa.URL, size: int) -> None:
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._size = size
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._sql: dict[str, str] = {}

    def fetch(self, sql: str, params: dict[str, Any], one: bool) -> Any:
        """The first row (``one``) or every row of ``sql``, written with ``:name`` parameters."""
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = _NAMED.sub(r"%(\1)s", sql)
        while True:
            conn, reused = self._checkout()
            try:
                cursor = conn.execute(converted, params)
                rows = cursor.fetchone() if one else cursor.fetchall()
            except psycopg.OperationalError as error:
                conn.close()
                if reused:
                    # A kept connection the server has dropped (restarted, or timed out idle
                    # connections): a read is safe to repeat, on a new connection.
                    continue
                raise sa.exc.OperationalError(converted, None, error) from error
            except BaseException:
                conn.close()
                raise
            self._checkin(conn)
            return rows

    def _checkout(self) -> tuple[psycopg.Connection[Any], bool]:
        """A connection, and whether it was kept from an earlier call."""
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        try:
            return psycopg.connect(self._conninfo, autocommit=True), False
        except psycopg.OperationalError as error:
            # Raised as SQLAlchemy raises it, so the app answers an unreachable database one way.
            raise sa.exc.OperationalError(None, None, error) from error

    def _checkin(self, conn: psycopg.Connection[Any]) -> None:
        with self._lock:
            if len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
