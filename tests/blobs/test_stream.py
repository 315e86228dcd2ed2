"""Streaming a stored blob from the event loop: cached or cold, it arrives whole and in order."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from moorage.blobs.stream import (
    LONE_CHUNK,
    MIN_CHUNK,
    PAUSE_EVERY,
    chunk_size,
    file_chunks,
    reads_say_when_they_would_block,
)


def _stream(path: Path, size: int) -> AsyncIterator[bytes]:
    return file_chunks(open(path, "rb", buffering=0), size, str(path))


def _collect(path: Path, size: int) -> list[bytes]:
    async def run() -> list[bytes]:
        return [chunk async for chunk in _stream(path, size)]
    return asyncio.run(run())


def _filesystem(path: Path) -> str:
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True).stdout.strip()


@pytest.fixture
def blob(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(3 * LONE_CHUNK + 123)
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path, data


def test_a_cold_file_then_a_cached_one_stream_whole_in_bounded_chunks(blob: tuple[Path, bytes]) -> None:
    path, data = blob
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
        # Out of the page cache: where the filesystem says so, the first reads go to a thread.
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    for _ in ("cold", "cached"):
        chunks = _collect(path, len(data))
        assert b"".join(chunks) == data
        assert all(0 < len(chunk) <= LONE_CHUNK for chunk in chunks)


def test_streams_sent_at_once_share_the_read_ahead(blob: tuple[Path, bytes]) -> None:
    path, data = blob

    async def run() -> tuple[list[int], list[list[bytes]]]:
        lone = [len(chunk) async for chunk in _stream(path, len(data))]
        streams = {i: _stream(path, len(data)) for i in range(2)}
        received: list[list[bytes]] = [[], []]
        while streams:  # sent side by side, a chunk of each in turn
            for i, stream in list(streams.items()):
                try:
                    received[i].append(await anext(stream))
                except StopAsyncIteration:
                    del streams[i]
        return lone, received

    lone, (first, second) = asyncio.run(run())
    assert lone[0] == LONE_CHUNK
    assert b"".join(first) == b"".join(second) == data
    # The first stream read alone until the second began; from then on both read half as much.
    assert len(first[0]) == LONE_CHUNK
    assert {len(c) for c in first[1:-1] + second[:-1]} == {chunk_size(2)} == {LONE_CHUNK // 2}
    assert chunk_size(3) == chunk_size(200) == MIN_CHUNK


def test_a_long_stream_of_cached_pages_lets_the_rest_of_the_worker_run(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(8 * PAUSE_EVERY))  # just written: every read is answered from the cache

    async def run() -> int:
        turns = 0

        async def neighbour() -> None:  # another request on the same worker, or the disconnect listener
            nonlocal turns
            while True:
                turns += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(neighbour())
        await asyncio.sleep(0)
        before = turns
        async for _ in _stream(path, 8 * PAUSE_EVERY):
            pass
        task.cancel()
        return turns - before

    assert asyncio.run(run()) >= 7


def test_a_file_shorter_than_its_record_ends_the_stream_and_says_so(blob: tuple[Path, bytes],
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    path, data = blob
    with caplog.at_level(logging.ERROR, logger="moorage.blobs"):
        chunks = _collect(path, len(data) + 10)
    assert b"".join(chunks) == data
    assert f"holds {len(data)} bytes, fewer than the {len(data) + 10} recorded" in caplog.text


def test_only_filesystems_that_report_blocking_reads_are_streamed_from_the_loop(tmp_path: Path) -> None:
    if _filesystem(tmp_path) in ("ext2/ext3", "xfs", "btrfs"):
        assert reads_say_when_they_would_block(tmp_path)
    shm = Path("/dev/shm")
    if shm.is_dir() and _filesystem(shm) == "tmpfs":
        assert not reads_say_when_they_would_block(shm)
