"""Blobs as a repository holds them: where one is, linking one in from another repository, unlinking one."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio.to_thread

from moorage.blobs.driver import BlobDriver
from moorage.core.errors import BlobUnknown
from moorage.core.reference import Digest
from moorage.meta.registry import RegistryModel, StoredManifest
from moorage.meta.store import MetaStore


@dataclass(frozen=True, slots=True)
class Located:
    digest: str
    size: int
    #: Set when the digest names one of the repository's manifests, which clients may read as a blob too.
    manifest: StoredManifest | None = None


def unknown(repo: str, digest: str) -> BlobUnknown:
    return BlobUnknown(f"blob {digest} is not in repository {repo}", detail={"digest": digest})


class BlobService:
    def __init__(self, store: MetaStore, model: RegistryModel, driver: BlobDriver) -> None:
        self.store = store
        self.model = model
        self.driver = driver

    async def locate(self, repo: str, digest: Digest) -> Located:
        text = str(digest)
        size = await self.store.query(self.model.blob_size, repo, text)
        if size is not None:
            return Located(text, size)
        manifest = await self.store.query(self.model.manifest_by_digest, repo, text)
        if manifest is not None:
            return Located(text, len(manifest.content), manifest)
        raise unknown(repo, text)

    async def check(self, repo: str, digest: Digest) -> Located:
        """What a client's HEAD learns before it skips an upload: the blob is linked here and its content is in
        the store. Being asked renews its lease (once half of it has passed), as the client may reference it next."""
        text = str(digest)
        found = await self.store.query(self.model.blob_lease, repo, text)
        if found is None:
            return await self.locate(repo, digest)
        size, leased_until = found
        stat = self.driver.stat
        if (await anyio.to_thread.run_sync(stat, text) if self.driver.remote else stat(text)) is None:
            # Recorded but not (yet, or no longer) in the store: the client must send it.
            raise unknown(repo, text)
        if leased_until < time.time() + self.model.lease_seconds / 2:
            await self.store.run(self.model.renew_lease, repo, text)
        return Located(text, size)

    async def mount(self, repo: str, source: str, digest: Digest) -> bool:
        """Link a blob ``source`` holds into ``repo``; False when ``source`` lacks it."""
        return await self.store.run(self.model.mount_blob, repo, source, str(digest)) is not None

    async def unlink(self, repo: str, digest: Digest) -> None:
        if not await self.store.run(self.model.unlink_blob, repo, str(digest)):
            raise unknown(repo, str(digest))
