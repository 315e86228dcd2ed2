"""Blob uploads: stream bytes to a private file while hashing them, then commit under the digest.

The session (its id, repository and acknowledged offset) lives in the metadata store, so any worker
process or replica can continue it. The running SHA-256 state cannot leave a process, so each
process keeps the states of the sessions it served last; when a chunk lands elsewhere (another
worker, or after a restart) the acknowledged prefix is hashed once from the file to catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO

import anyio.to_thread

from moorage.blobs.driver import BlobDriver
from moorage.meta.registry import RegistryModel, Upload
from moorage.meta.store import MetaStore
from moorage.registry.errors import BlobUploadInvalid, DigestInvalid, RangeNotSatisfiable
from moorage.registry.reference import Digest

log = logging.getLogger("moorage.uploads")

_READ_SIZE = 4 * 1024 * 1024
# Big enough that a thread hop is cheap next to the work it carries; small enough that two batches
# per upload (one being received, one being written) stay a few MiB.
_BATCH_SIZE = 2 * 1024 * 1024


def _write_all(fh: BinaryIO, batch: list[bytes]) -> None:
    for chunk in batch:
        fh.write(chunk)


def _hash_all(hasher: Any, batch: list[bytes]) -> None:
    for chunk in batch:
        hasher.update(chunk)


async def _settle(futures: list[Future[None]]) -> None:
    for future in futures:
        await asyncio.wrap_future(future)


class _Hashers:
    """A bounded map of upload id -> (offset, running sha256) for sessions this process served."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self._states: OrderedDict[str, tuple[int, Any]] = OrderedDict()

    def take(self, upload_id: str, offset: int) -> Any | None:
        state = self._states.pop(upload_id, None)
        if state is not None and state[0] == offset:
            return state[1]
        return None

    def keep(self, upload_id: str, offset: int, hasher: Any) -> None:
        self._states[upload_id] = (offset, hasher)
        while len(self._states) > self.limit:
            self._states.popitem(last=False)

    def drop(self, upload_id: str) -> None:
        self._states.pop(upload_id, None)


class UploadService:
    def __init__(self, store: MetaStore, model: RegistryModel, driver: BlobDriver) -> None:
        self.store = store
        self.model = model
        self.driver = driver
        self.hashers = _Hashers()
        # One thread per stage is enough for one upload; more let concurrent uploads proceed together.
        self._writer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="moorage-write")
        self._hasher = ThreadPoolExecutor(max_workers=4, thread_name_prefix="moorage-hash")

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    async def start(self, repo: str) -> str:
        upload_id = self.new_id()
        await self.store.run(self.model.create_upload, upload_id, repo)
        return upload_id

    def _rehash(self, upload_id: str, offset: int, algorithm: str = "sha256") -> Any:
        hasher = hashlib.new(algorithm)
        remaining = offset
        with self.driver.read_upload(upload_id) as fh:
            while remaining > 0:
                chunk = fh.read(min(_READ_SIZE, remaining))
                if not chunk:
                    raise BlobUploadInvalid("the upload's stored data is shorter than its acknowledged "
                                            "offset; start the upload again")
                hasher.update(chunk)
                remaining -= len(chunk)
        return hasher

    async def _hasher_for(self, upload: Upload) -> Any:
        hasher = self.hashers.take(upload.id, upload.offset)
        if hasher is None:
            if upload.offset == 0:
                return hashlib.sha256()
            log.info("upload %s continued in a new process; hashing its first %d bytes once",
                     upload.id, upload.offset)
            hasher = await anyio.to_thread.run_sync(self._rehash, upload.id, upload.offset)
        return hasher

    async def append(self, upload: Upload, body: AsyncIterator[bytes], start: int | None) -> int:
        """Write a chunk at the upload's offset; returns the new acknowledged offset."""
        if start is not None and start != upload.offset:
            raise RangeNotSatisfiable(
                f"chunk starts at byte {start} but the upload holds {upload.offset} bytes; "
                f"send the next chunk from byte {upload.offset}", detail={"offset": upload.offset})
        hasher = await self._hasher_for(upload)
        written = await self._write(upload.id, upload.offset, body, hasher)
        if written == 0:
            self.hashers.keep(upload.id, upload.offset, hasher)
            return upload.offset
        offset = upload.offset + written
        if not await self.store.run(self.model.advance_upload, upload.id, upload.offset, offset):
            raise RangeNotSatisfiable("another request wrote to this upload at the same time; "
                                      "GET the upload URL for its current offset")
        self.hashers.keep(upload.id, offset, hasher)
        return offset

    async def _write(self, upload_id: str, offset: int, body: AsyncIterator[bytes], hasher: Any) -> int:
        """Stream ``body`` to the upload file while hashing it.

        The network chunks are gathered into batches; while the loop receives the next batch, one
        thread writes the previous one and another hashes it (both release the GIL), so receiving,
        writing and hashing run side by side instead of one after another on the loop.
        """
        written = 0
        fh = self.driver.open_upload(upload_id, offset)
        batch: list[bytes] = []
        batched = 0
        in_flight: list[Future[None]] = []
        completed = False
        try:
            async for chunk in body:
                if not chunk:
                    continue
                batch.append(chunk)
                batched += len(chunk)
                if batched >= _BATCH_SIZE:
                    await _settle(in_flight)
                    in_flight = [self._writer.submit(_write_all, fh, batch),
                                 self._hasher.submit(_hash_all, hasher, batch)]
                    written += batched
                    batch, batched = [], 0
            await _settle(in_flight)
            if batch:
                _write_all(fh, batch)
                _hash_all(hasher, batch)
                written += batched
            completed = True
        finally:
            # The file must not be truncated or closed under a batch still being written.
            for future in in_flight:
                future.exception()
            if not completed:
                # What came after the acknowledged offset only takes space, and a full disk is a
                # likely reason the chunk failed.
                with contextlib.suppress(OSError):
                    fh.truncate(offset)
            fh.close()
        return written

    async def finish(self, upload: Upload, expected: Digest) -> int:
        """Verify the whole upload against ``expected``, commit it and link it; returns its size."""
        hasher = self.hashers.take(upload.id, upload.offset)
        if expected.algorithm != "sha256" or hasher is None:
            # Only sha256 runs while streaming; other algorithms are checked once, at the end.
            hasher = await anyio.to_thread.run_sync(self._rehash, upload.id, upload.offset,
                                                    expected.algorithm)
        actual = f"{expected.algorithm}:{hasher.hexdigest()}"
        if actual != str(expected):
            await self.cancel(upload.id)
            raise DigestInvalid(f"the uploaded content has digest {actual}, not {expected}; "
                                "the upload was discarded, push the blob again",
                                detail={"expected": str(expected), "actual": actual})
        await anyio.to_thread.run_sync(self.driver.commit_upload, upload.id, str(expected))
        await self.store.run(self.model.link_blob, upload.repository, str(expected), upload.offset)
        await self.store.run(self.model.delete_upload, upload.id)
        return upload.offset

    async def monolithic(self, repo: str, body: AsyncIterator[bytes], expected: Digest) -> int:
        """A single-request upload: no session row, the temporary file is the whole state."""
        upload = Upload(self.new_id(), repo, 0)
        hasher = hashlib.sha256()
        try:
            written = await self._write(upload.id, 0, body, hasher)
        except BaseException:
            self.driver.discard_upload(upload.id)
            raise
        self.hashers.keep(upload.id, written, hasher)
        return await self.finish(Upload(upload.id, repo, written), expected)

    async def cancel(self, upload_id: str) -> None:
        self.hashers.drop(upload_id)
        await anyio.to_thread.run_sync(self.driver.discard_upload, upload_id)
        await self.store.run(self.model.delete_upload, upload_id)

    def purge_stale(self, max_age_seconds: float) -> int:
        """Remove abandoned uploads: expired sessions, and temporary files no session owns (a
        single-request upload cut off by a crash). Returns how many were removed."""
        cutoff = time.time() - max_age_seconds
        stale = set(self.model.purge_uploads(cutoff))
        for upload_id, mtime in self.driver.list_uploads():
            if upload_id in stale or (mtime < cutoff and self.model.get_upload(upload_id) is None):
                self.driver.discard_upload(upload_id)
                stale.add(upload_id)
        return len(stale)
