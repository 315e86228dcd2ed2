"""Holding an upload session exclusively across processes and replicas, for blob stores that cannot lock their
own objects (S3): a request writing a chunk, and the purge about to drop the session, take the same lock.

On PostgreSQL a session-level advisory lock on a connection of its own (every replica sees it, and it goes
with the connection if the process dies); on SQLite, whose processes all share one host, ``flock`` on a small
file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from moorage.meta.store import MetaStore

Release = Callable[[], None]


def _key(upload_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"upload/{upload_id}".encode()).digest()[:8], "big", signed=True)


class UploadLocks:
    def __init__(self, store: MetaStore) -> None:
        self.store = store
        self.directory = None if not store.is_sqlite else Path(f"{store.engine.url.database}.upload-locks")

    def try_lock(self, upload_id: str) -> Release | None:
        if self.directory is not None:
            return self._try_flock(self.directory, upload_id)
        conn = self.store.engine.connect()
        try:
            held = conn.execute(sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": _key(upload_id)}).scalar()
            conn.commit()
        except BaseException:
            conn.close()
            raise
        if not held:
            conn.close()
            return None

        def release() -> None:
            try:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _key(upload_id)})
                conn.commit()
            finally:
                conn.close()
        return release

    @staticmethod
    def _try_flock(directory: Path, upload_id: str) -> Release | None:
        directory.mkdir(mode=0o700, exist_ok=True)
        path = directory / upload_id
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            # The holder before us removes the file as it lets go: a lock on a removed file holds nothing.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)

        def release() -> None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            os.close(fd)
        return release
