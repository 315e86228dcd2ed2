"""Content store on a local filesystem: ``blobs/<alg>/<2 hex>/<hex>`` plus ``uploads/<id>``."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import BinaryIO


class FilesystemDriver:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "blobs"
        self.uploads = root / "uploads"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.uploads.mkdir(parents=True, exist_ok=True)

    def local_path(self, digest: str) -> Path:
        algorithm, _, hexpart = digest.partition(":")
        return self.blobs / algorithm / hexpart[:2] / hexpart

    def stat(self, digest: str) -> int | None:
        try:
            return os.stat(self.local_path(digest)).st_size
        except FileNotFoundError:
            return None

    def _upload_path(self, upload_id: str) -> Path:
        return self.uploads / upload_id

    def open_upload(self, upload_id: str, offset: int) -> BinaryIO:
        path = self._upload_path(upload_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        fh = os.fdopen(fd, "wb", buffering=0)
        # Bytes past the acknowledged offset belong to a chunk that never completed.
        fh.truncate(offset)
        fh.seek(offset)
        return fh  # type: ignore[return-value]

    def read_upload(self, upload_id: str) -> BinaryIO:
        return open(self._upload_path(upload_id), "rb")

    def commit_upload(self, upload_id: str, digest: str) -> None:
        source = self._upload_path(upload_id)
        target = self.local_path(digest)
        fd = os.open(source, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Same content under the same name: a concurrent commit of the same digest is harmless.
        os.replace(source, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def list_uploads(self) -> list[tuple[str, float]]:
        return [(entry.name, entry.stat().st_mtime) for entry in os.scandir(self.uploads) if entry.is_file()]

    def discard_upload(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._upload_path(upload_id))

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.local_path(digest))
