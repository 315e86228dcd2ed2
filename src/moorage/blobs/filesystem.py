"""Content store on a local filesystem: ``blobs/<alg>/<2 hex>/<hex>`` plus ``uploads/<id>``.

Blob GETs are answered from the page cache on the event loop or handed to the server as a file
(``moorage.blobs.stream``); nothing of that leaves this module but the Body it returns.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

from moorage.blobs.driver import Body, Chunks, LocalFile
from moorage.blobs.stream import file_chunks, reads_say_when_they_would_block


class _UploadFile(io.RawIOBase):
    """An upload's file that starts flushing to disk while the upload is still arriving.

    Each time the file grows past another ``FLUSH_EVERY`` bytes, a background thread runs
    ``fdatasync`` on what is written so far, so the disk works while the network does and the fsync
    before commit only has the tail left. Counting by file position, not by this handle, keeps that
    true for chunked uploads, whose every PATCH opens the file anew. The flush gets its own
    descriptor, so closing the file never waits for the disk.
    """

    FLUSH_EVERY = 64 * 1024 * 1024

    def __init__(self, fd: int, position: int, flusher: ThreadPoolExecutor) -> None:
        self.fd = fd
        self.position = position
        self.flushed_mark = position - position % self.FLUSH_EVERY
        self.flusher = flusher

    def writable(self) -> bool:
        return True

    @property
    def state(self) -> bytes | None:
        return None  # the file is the whole state

    def write(self, data: Any) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        self.position += len(data)
        if self.position - self.flushed_mark >= self.FLUSH_EVERY:
            self.flushed_mark = self.position - self.position % self.FLUSH_EVERY
            self.flusher.submit(_flush, os.dup(self.fd))
        return len(data)

    def truncate(self, size: int | None = None) -> int:
        size = self.position if size is None else size
        os.ftruncate(self.fd, size)
        os.lseek(self.fd, size, os.SEEK_SET)
        self.position = size
        return size

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def _flush(fd: int) -> None:
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


class FilesystemDriver:
    remote = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.uploads = root / "uploads"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)
        self._flusher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="moorage-flush")
        self.reads_say_when_they_would_block = reads_say_when_they_would_block(self.blobs)

    def local_path(self, digest: str) -> Path:
        algorithm, _, hexpart = digest.partition(":")
        return self.blobs / algorithm / hexpart[:2] / hexpart

    def stat(self, digest: str) -> int | None:
        try:
            return os.stat(self.local_path(digest)).st_size
        except FileNotFoundError:
            return None

    async def body(self, digest: str, byte_range: tuple[int, int] | None, redirect: bool) -> Body:
        path = self.local_path(digest)
        if self.reads_say_when_they_would_block and byte_range is None:
            # Opened here, not in the stream, so a missing file is still a clean 404.
            file = open(path, "rb", buffering=0)  # noqa: SIM115 - file_chunks closes it
            size = os.fstat(file.fileno()).st_size
            return Chunks(size, file_chunks(file, size, str(path)))
        # Ranges, and stores whose reads could stall the loop: Granian reads the file on its own threads.
        # A stat is a microsecond syscall; doing it here spares the response a thread hop.
        return LocalFile(path, os.stat(path))

    def read_small(self, digest: str, limit: int) -> bytes | None:
        try:
            with open(self.local_path(digest), "rb") as blob:
                return blob.read(limit + 1)
        except FileNotFoundError:
            return None

    def _upload_path(self, upload_id: str) -> Path:
        return self.uploads / upload_id

    def open_upload(self, upload_id: str, offset: int, state: bytes | None = None) -> _UploadFile:
        fd = os.open(self._upload_path(upload_id), os.O_WRONLY | os.O_CREAT, 0o600)
        # Bytes past the acknowledged offset belong to a chunk that never completed.
        os.ftruncate(fd, offset)
        os.lseek(fd, offset, os.SEEK_SET)
        return _UploadFile(fd, offset, self._flusher)

    def try_lock_upload(self, upload_id: str) -> Callable[[], None] | None:
        # flock on the upload file itself: shared by every worker on this host, gone with the file.
        fd = os.open(self._upload_path(upload_id), os.O_RDONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return lambda: os.close(fd)

    def read_upload(self, upload_id: str, state: bytes | None = None) -> BinaryIO:
        return open(self._upload_path(upload_id), "rb")

    def commit_upload(self, upload_id: str, digest: str, state: bytes | None = None) -> None:
        source = self._upload_path(upload_id)
        target = self.local_path(digest)
        fd = os.open(source, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A second name for the same bytes, moved into place in one step: the upload keeps its own name until
        # it is discarded (so it can be published again), and the same content under the same name makes a
        # concurrent commit of the same digest harmless.
        staging = target.with_name(f".{target.name}.{upload_id}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
        os.link(source, staging)
        os.replace(staging, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def list_uploads(self) -> list[tuple[str, float]]:
        return [(entry.name, entry.stat().st_mtime) for entry in os.scandir(self.uploads) if entry.is_file()]

    def discard_upload(self, upload_id: str, state: bytes | None = None) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._upload_path(upload_id))

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.local_path(digest))

    def delete_many(self, digests: Iterable[str]) -> None:
        for digest in digests:
            self.delete(digest)
