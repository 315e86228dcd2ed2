"""An upload session is held by one request at a time across processes (and, on PostgreSQL, replicas): a second
holder is refused until the first lets go, and a released lock can be taken again."""

from __future__ import annotations

from pathlib import Path

import pytest

from moorage.meta.store import MetaStore
from moorage.meta.upload_locks import UploadLocks
from tests.support.postgres import Postgres


def check_exclusive(first: UploadLocks, second: UploadLocks) -> None:
    release = first.try_lock("u-1")
    assert release is not None
    assert second.try_lock("u-1") is None
    other = second.try_lock("u-2")  # another session is not held up
    assert other is not None
    release()
    again = second.try_lock("u-1")
    assert again is not None
    assert first.try_lock("u-1") is None
    again()
    other()


@pytest.mark.fast
def test_sqlite_locks_hold_across_store_instances(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'moorage.db'}"
    a, b = MetaStore(url), MetaStore(url)
    try:
        check_exclusive(UploadLocks(a), UploadLocks(b))
        assert list((tmp_path / "moorage.db.upload-locks").iterdir()) == []  # nothing left once released
    finally:
        a.dispose()
        b.dispose()


def test_postgresql_locks_hold_across_connections(postgres: Postgres) -> None:
    url = postgres.new_database("upload_locks")
    a, b = MetaStore(url), MetaStore(url)
    try:
        check_exclusive(UploadLocks(a), UploadLocks(b))
    finally:
        a.dispose()
        b.dispose()
