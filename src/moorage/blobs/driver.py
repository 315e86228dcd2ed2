"""The narrow interface every content store implements.

Content is addressed by digest and written once: an upload is appended to a private temporary
object, then committed under its verified digest in one atomic step. Nothing half-written is ever
reachable under a digest.

A store may keep something about an unfinished upload besides its bytes (the S3 driver: the multipart
upload and its parts). The writer hands that over as ``state`` when a chunk ends; the caller saves it with
the session's offset and passes it back for the next chunk, the commit and re-reads, so the next chunk may
land on another process or replica.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file the server hands to the kernel itself (Granian's pathsend): only a local store answers this."""

    path: Path
    stat: os.stat_result


@dataclass(frozen=True, slots=True)
class Chunks:
    """The blob's bytes (or the asked range of them), streamed through this process."""

    size: int
    chunks: AsyncIterator[bytes]


@dataclass(frozen=True, slots=True)
class Redirect:
    """Where the client may fetch the blob itself (a presigned URL of an object store)."""

    url: str


#: How a blob GET is answered.
Body = LocalFile | Chunks | Redirect


class UploadWriter(Protocol):
    """An upload's temporary object, open for appending one chunk."""

    def write(self, data: bytes) -> int: ...

    def truncate(self, size: int) -> int:
        """Drop what this chunk wrote (``size`` is where it started): the chunk failed."""

    def close(self) -> None: ...

    @property
    def state(self) -> bytes | None:
        """What the store keeps about the upload after this chunk, once closed (None: nothing)."""


class BlobDriver(Protocol):
    #: Whether every call may wait on a network: callers then make each one off the event loop (a local
    #: store's writes are left where they are, which is what keeps its hot path fast).
    remote: bool

    def stat(self, digest: str) -> int | None:
        """Size in bytes of the committed blob, or None when absent."""

    async def body(self, digest: str, byte_range: tuple[int, int] | None, redirect: bool) -> Body:
        """How to send the committed blob (``byte_range``: inclusive, already checked against its size);
        ``redirect`` allows a Redirect where the store offers one. Raises FileNotFoundError when absent."""

    def read_small(self, digest: str, limit: int) -> bytes | None:
        """Up to ``limit`` + 1 bytes of the committed blob (so a caller sees it is larger); None when absent."""

    def open_upload(self, upload_id: str, offset: int, state: bytes | None) -> UploadWriter:
        """The upload's temporary object opened for appending at ``offset`` (anything past it dropped)."""

    def try_lock_upload(self, upload_id: str) -> Callable[[], None] | None:
        """Hold the upload exclusively and return what releases it; None if another request holds it."""

    def read_upload(self, upload_id: str, state: bytes | None) -> BinaryIO:
        """The upload's bytes so far, for re-hashing when a session moves between processes."""

    def commit_upload(self, upload_id: str, digest: str, state: bytes | None) -> None:
        """Make the finished upload durable and visible under ``digest`` (idempotent, and repeatable: the
        upload's own object stays until ``discard_upload``)."""

    def list_uploads(self) -> list[tuple[str, float]]:
        """Every upload's temporary object, with its last modification time (epoch seconds)."""

    def discard_upload(self, upload_id: str, state: bytes | None = None) -> None:
        """Drop an upload's temporary object (and anything the store keeps for it); missing is fine. With the
        upload's ``state`` a store may drop what it names without looking for it."""

    def delete(self, digest: str) -> None:
        """Remove a committed blob; missing is fine."""

    def delete_many(self, digests: Iterable[str]) -> None:
        """Remove committed blobs (in batches where the store has them); missing ones are fine."""
