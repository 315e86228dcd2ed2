"""The narrow interface every content store implements.

Content is addressed by digest and written once: an upload is appended to a private temporary
object, then committed under its verified digest in one atomic step. Nothing half-written is ever
reachable under a digest.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol


class BlobDriver(Protocol):
    #: Whether reads of ``local_path`` files say when they would wait for the disk (RWF_NOWAIT), so
    #: the server may read cached blobs on its event loop (``moorage.blobs.stream``).
    reads_say_when_they_would_block: bool

    def stat(self, digest: str) -> int | None:
        """Size in bytes of the committed blob, or None when absent."""

    def local_path(self, digest: str) -> Path:
        """A path the server can read the committed blob from (filesystem drivers)."""

    def open_upload(self, upload_id: str, offset: int) -> BinaryIO:
        """The upload's temporary object opened for writing at ``offset``, anything past it dropped."""

    def try_lock_upload(self, upload_id: str) -> Callable[[], None] | None:
        """Hold the upload exclusively (across processes) and return what releases it; None if
        another request holds it."""

    def read_upload(self, upload_id: str) -> BinaryIO:
        """The upload's bytes so far, for re-hashing when a session moves between processes."""

    def commit_upload(self, upload_id: str, digest: str) -> None:
        """Make the finished upload durable and visible under ``digest`` (idempotent, and repeatable: the
        upload's own object stays until ``discard_upload``)."""

    def list_uploads(self) -> list[tuple[str, float]]:
        """Every upload's temporary object, with its last modification time (epoch seconds)."""

    def discard_upload(self, upload_id: str) -> None:
        """Drop an upload's temporary object; missing is fine."""

    def delete(self, digest: str) -> None:
        """Remove a committed blob; missing is fine."""
