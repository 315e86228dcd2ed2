"""Blob uploads: stream bytes to a private file while hashing them, then commit under the digest.

The session (its id, repository, acknowledged offset and the running SHA-256 state) lives in the
metadata store, so any worker process or replica can continue it where the last chunk stopped
(``moorage.core.sha256state``). Where that state cannot be kept, the acknowledged prefix is hashed
once from the file instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from moorage.blobs.driver import BlobDriver, UploadWriter
from moorage.core import heap, sha256state
from moorage.core.errors import DigestInvalid, DomainError, Throttled, UploadInvalid, UploadOutOfOrder, UploadUnknown
from moorage.core.reference import Digest
from moorage.meta.registry import RegistryModel, Upload
from moorage.meta.store import MetaStore

log = logging.getLogger("moorage.uploads")

_READ_SIZE = 4 * 1024 * 1024
# How long a request waits for an earlier request on the same session (usually one the client gave
# up on) to finish.
_LOCK_WAIT_SECONDS = 30.0
# Big enough that a thread hop is cheap next to the work it carries; small enough that two batches
# per upload (one being received, one being written) stay a few MiB. Granian hands over up to 1 MiB
# per read (moorage.launch), so a batch is usually one read.
_BATCH_SIZE = 1024 * 1024
# Uploads at least this large leave enough freed buffer space behind to be worth returning to the OS.
_RELEASE_AFTER_BYTES = 64 * 1024 * 1024
# Expired sessions are locked (one open file each) and deleted this many at a time.
_PURGE_BATCH = 100
#: What ``UploadService.new_id`` hands out.
_UPLOAD_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True, slots=True)
class UploadLimits:
    """How many sessions may be open at once, and how long an untouched one lives (the settings
    ``max_uploads_per_repository``, ``max_uploads_per_account`` and ``upload_ttl_hours``)."""

    per_repository: int = 100
    per_account: int = 1000
    ttl_hours: float = 24.0

    @property
    def ttl_seconds(self) -> float:
        return self.ttl_hours * 3600


def _write_all(fh: UploadWriter, batch: list[bytes]) -> None:
    for chunk in batch:
        fh.write(chunk)


def _hash_all(hasher: Any, batch: list[bytes]) -> None:
    for chunk in batch:
        hasher.update(chunk)


def _position(upload: Upload, offset: int | None) -> dict[str, Any]:
    """Where an upload stands, for a client that must resume it (the adapter turns it into headers)."""
    return {"name": upload.repository, "uuid": upload.id, **({"offset": offset} if offset is not None else {})}


async def _settle(futures: list[Future[None]]) -> None:
    for future in futures:
        await asyncio.wrap_future(future)


class UploadService:
    def __init__(self, store: MetaStore, model: RegistryModel, driver: BlobDriver,
                 limits: UploadLimits | None = None,
                 admit: Callable[[str, str, int], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.model = model
        self.driver = driver
        self.limits = limits or UploadLimits()
        #: Asked (repository, digest, size) before a verified blob is committed; raises to refuse it (the
        #: project's quota, ``moorage.core.quotas``).
        self.admit = admit
        # One thread per stage is enough for one upload; more let concurrent uploads proceed together.
        self._writer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="moorage-write")
        self._hasher = ThreadPoolExecutor(max_workers=4, thread_name_prefix="moorage-hash")

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    async def session(self, repo: str, upload_id: str) -> Upload:
        """The open upload ``upload_id`` of ``repo``."""
        # Only ids ``new_id`` hands out name sessions; any other text is unknown without asking the store
        # (PostgreSQL refuses text holding NUL outright).
        upload = await self.store.query(self.model.get_upload, upload_id) if _UPLOAD_ID.fullmatch(upload_id) \
            else None
        if upload is None or upload.repository != repo:
            raise UploadUnknown.session(upload_id[:100])
        return upload

    async def start(self, repo: str, owner: str) -> str:
        """Open a session in ``repo`` for ``owner`` (an account name, or ``address:<ip>``), or refuse
        with 429 when either already has the most open sessions allowed."""
        upload_id = self.new_id()
        limits = self.limits
        refused = await self.store.run(self.model.create_upload, upload_id, repo, owner,
                                       limits.per_repository, limits.per_account)
        if refused is not None:
            raise self._too_many(refused, repo, owner)
        return upload_id

    def _too_many(self, cap: str, repo: str, owner: str) -> Throttled:
        limits = self.limits
        if cap == "repository":
            who, most, setting = f"repository {repo}", limits.per_repository, "max_uploads_per_repository"
        else:
            address = owner.removeprefix("address:")
            who = f"client address {address}" if address != owner else f"account {owner}"
            most, setting = limits.per_account, "max_uploads_per_account"
        return Throttled(
            f"{who} already has {most} open uploads, the most allowed ({setting}); finish or cancel (DELETE) "
            f"open uploads, or wait for them to expire after {limits.ttl_hours:g} h untouched",
            detail={"limit": setting, "max": most, "expires_after_hours": limits.ttl_hours})

    def _rehash(self, upload_id: str, offset: int, algorithm: str = "sha256", state: bytes | None = None) -> Any:
        hasher = sha256state.new() if algorithm == "sha256" else hashlib.new(algorithm)
        remaining = offset
        with self.driver.read_upload(upload_id, state) as fh:
            while remaining > 0:
                chunk = fh.read(min(_READ_SIZE, remaining))
                if not chunk:
                    raise UploadInvalid("the upload's stored data is shorter than its acknowledged "
                                            "offset; start the upload again")
                hasher.update(chunk)
                remaining -= len(chunk)
        return hasher

    async def _hasher_for(self, upload: Upload) -> Any:
        """The session's SHA-256 so far: resumed from its saved state, or re-hashed from the file."""
        hasher = sha256state.new(upload.hash_state) if upload.hash_state or upload.offset == 0 else None
        if hasher is None:
            log.info("upload %s has no saved hash state here; hashing its first %d bytes once",
                     upload.id, upload.offset)
            hasher = await anyio.to_thread.run_sync(self._rehash, upload.id, upload.offset, "sha256",
                                                     upload.store_state)
        return hasher

    async def receive(self, upload: Upload, body: AsyncIterator[bytes], start: int | None,
                      digest: Digest | None = None) -> Upload:
        """Write a chunk at the session's offset (a PATCH), and with ``digest`` verify and commit the
        whole blob (the closing PUT); returns the advanced session.

        One request at a time per session, across workers: a client that gave up on a chunk and
        sent it again must not meet the first attempt still writing or cutting the file. The
        session is read again once the lock is held, so every decision is made on its real offset.
        """
        async with self._exclusive(upload.id):
            current = await self.store.query(self.model.get_upload, upload.id)
            if current is None:
                # Finished or cancelled while this request waited; the lock must not leave a file behind.
                await anyio.to_thread.run_sync(self.driver.discard_upload, upload.id)
                raise UploadUnknown.session(upload.id)
            if start is not None and start != current.offset:
                raise UploadOutOfOrder(
                    f"chunk starts at byte {start} but the upload holds {current.offset} bytes; "
                    f"send the next chunk from byte {current.offset}", detail=_position(current, current.offset))
            hasher = await self._hasher_for(current)
            written, store_state = await self._write(current.id, current.offset, body, hasher, current.store_state)
            advanced = Upload(current.id, current.repository, current.offset + written,
                              sha256state.state_of(hasher) if written else current.hash_state,
                              store_state if written else current.store_state)
            if written and not await self.store.run(self.model.advance_upload, current.id, current.offset,
                                                    advanced.offset, advanced.hash_state, advanced.store_state):
                raise UploadOutOfOrder("another request wrote to this upload at the same time; "
                                       "GET the upload URL for its current offset", detail=_position(current, None))
            if digest is not None:
                await self.finish(advanced, digest, hasher)
            return advanced

    @contextlib.asynccontextmanager
    async def _exclusive(self, upload_id: str) -> AsyncIterator[None]:
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while (release := await self._io(self.driver.try_lock_upload, upload_id)) is None:
            if time.monotonic() > deadline:
                raise UploadInvalid("another request is still writing to this upload; "
                                        "GET the upload URL for its offset and retry")
            await asyncio.sleep(0.05)
        try:
            yield
        finally:
            await self._io(release)

    async def _io(self, call: Callable[..., Any], *args: Any) -> Any:
        """``call`` on the loop for a local store (its writes are the hot path and do not stall it), on a
        thread for a remote one (every call waits on the network)."""
        if self.driver.remote:
            return await anyio.to_thread.run_sync(call, *args)
        return call(*args)

    async def _write(self, upload_id: str, offset: int, body: AsyncIterator[bytes], hasher: Any,
                     state: bytes | None = None) -> tuple[int, bytes | None]:
        """Stream ``body`` to the upload file while hashing it; returns the bytes written and the store's
        state of the upload after them.

        The network chunks are gathered into batches; while the loop receives the next batch, one
        thread writes the previous one and another hashes it (both release the GIL), so receiving,
        writing and hashing run side by side instead of one after another on the loop.
        """
        written = 0
        fh = await self._io(self.driver.open_upload, upload_id, offset, state)
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
                await self._io(_write_all, fh, batch)
                _hash_all(hasher, batch)
                written += batched
            completed = True
        except OSError:
            # A full disk: read the rest of the body before answering. Answered while still sending, a
            # client can meet the connection's close as a reset that discards the answer, and would
            # report a dropped connection instead of the 507 that names the cause.
            async for _ in body:
                pass
            raise
        finally:
            # The file must not be truncated or closed under a batch still being written.
            for future in in_flight:
                future.exception()
            if not completed:
                # What came after the acknowledged offset only takes space, and a full disk is a
                # likely reason the chunk failed.
                with contextlib.suppress(OSError):
                    fh.truncate(offset)
            # A remote store puts what is left of the chunk (a part, or the tail) now.
            await self._io(fh.close)
        return written, fh.state

    async def finish(self, upload: Upload, expected: Digest, hasher: Any) -> int:
        """Verify the whole upload against ``expected`` (``hasher``: its running SHA-256), commit it and
        link it; returns its size."""
        if expected.algorithm != "sha256":
            # Only sha256 runs while streaming; other algorithms are checked once, at the end.
            hasher = await anyio.to_thread.run_sync(self._rehash, upload.id, upload.offset, expected.algorithm,
                                                     upload.store_state)
        actual = f"{expected.algorithm}:{hasher.hexdigest()}"
        if actual != str(expected):
            await self._discard(upload.id)
            raise DigestInvalid(f"the uploaded content has digest {actual}, not {expected}; "
                                "the upload was discarded, push the blob again",
                                detail={"expected": str(expected), "actual": actual})
        if self.admit is not None:
            try:
                await self.admit(upload.repository, str(expected), upload.offset)
            except DomainError:
                await self._discard(upload.id)  # a refused push keeps nothing
                raise
        await self._publish(upload, str(expected))
        await anyio.to_thread.run_sync(self.driver.discard_upload, upload.id, upload.store_state)
        await self.store.run(self.model.delete_upload, upload.id)
        if upload.offset >= _RELEASE_AFTER_BYTES:
            await anyio.to_thread.run_sync(heap.release_free_memory)
        return upload.offset

    async def _publish(self, upload: Upload, digest: str) -> None:
        """Put the verified content under its digest, then record and link it. Garbage collection may be
        deleting an old, unreferenced copy of the same digest at that moment (its tombstone says so): then
        wait until it is done and publish again, so the deletion never takes this upload's content. Once the
        link exists nothing can take it."""
        publish = functools.partial(anyio.to_thread.run_sync, self.driver.commit_upload, upload.id, digest,
                                    upload.store_state)
        await publish()
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        collided = False
        while not await self.store.run(self.model.link_blob, upload.repository, digest, upload.offset):
            collided = True
            if time.monotonic() > deadline:
                raise UploadInvalid("garbage collection is still deleting an old copy of this blob; push it again")
            await asyncio.sleep(0.05)
        if collided:
            await publish()

    async def monolithic(self, repo: str, body: AsyncIterator[bytes], expected: Digest) -> int:
        """A single-request upload: no session row, the temporary file is the whole state."""
        upload_id = self.new_id()
        hasher = sha256state.new()
        try:
            written, state = await self._write(upload_id, 0, body, hasher)
        except BaseException:
            await self._io(self.driver.discard_upload, upload_id)
            raise
        return await self.finish(Upload(upload_id, repo, written, store_state=state), expected, hasher)

    async def cancel(self, upload_id: str) -> None:
        async with self._exclusive(upload_id):
            await self._discard(upload_id)

    async def _discard(self, upload_id: str) -> None:
        await anyio.to_thread.run_sync(self.driver.discard_upload, upload_id)
        await self.store.run(self.model.delete_upload, upload_id)

    def purge_stale(self, max_age_seconds: float | None = None) -> int:
        """Remove abandoned uploads: sessions untouched for ``max_age_seconds`` (default: the TTL) with
        their data, and temporary files no session owns (a single-request upload cut off by a crash).
        Returns how many were removed.

        A session a request is writing to right now is not abandoned, whatever its age: each is locked
        as ``receive`` locks it, and one whose lock is taken is left alone.
        """
        cutoff = time.time() - (self.limits.ttl_seconds if max_age_seconds is None else max_age_seconds)
        stale = self.model.stale_uploads(cutoff)
        sessions, removed = set(stale), set[str]()
        for first in range(0, len(stale), _PURGE_BATCH):
            locks: dict[str, Callable[[], None]] = {}
            try:
                for upload_id in stale[first:first + _PURGE_BATCH]:
                    if (release := self.driver.try_lock_upload(upload_id)) is not None:
                        locks[upload_id] = release
                for upload_id in self.model.forget_stale_uploads(locks, cutoff):
                    self.driver.discard_upload(upload_id)
                    removed.add(upload_id)
            finally:
                for release in locks.values():
                    release()
        for upload_id, mtime in self.driver.list_uploads():
            if upload_id in removed or upload_id in sessions:
                continue  # a session's file: gone with it, or kept because the session is in use
            if mtime < cutoff and self.model.get_upload(upload_id) is None:
                self.driver.discard_upload(upload_id)
                removed.add(upload_id)
        return len(removed)

    async def purge_expired(self) -> int:
        """``purge_stale`` with the configured TTL, off the event loop, saying what it removed."""
        removed = await anyio.to_thread.run_sync(self.purge_stale)
        if removed:
            log.info("removed %d upload(s) untouched for %g h", removed, self.limits.ttl_hours)
        return removed
