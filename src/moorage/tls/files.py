"""Atomic file writes and a cross-process lock for the TLS directory.

Several server processes (Granian workers, replicas sharing a data directory, an operator running
``moorage tls renew``) may touch the same files at once. Readers must never see a half-written PEM,
and a certificate must never be paired with another process's key, so every write goes to a
temporary file in the same directory and is renamed into place while holding an exclusive lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new content, never a mix.
    Private unless ``mode`` says otherwise: in the data directory nothing is for other accounts (nodes
    get the CA from ``moorage tls ca``); files written for others, like a node's runtime config, say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates the file 0600, so a private key is never readable by others, even briefly.
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


@contextlib.contextmanager
def directory_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``<directory>/.lock`` for the duration of the block."""
    directory.mkdir(parents=True, exist_ok=True)
    lock_path = directory / ".lock"
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
