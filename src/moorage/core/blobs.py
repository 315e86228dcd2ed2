"""Blobs as a repository holds them: where one is, linking one in from another repository, unlinking one."""

from __future__ import annotations

from dataclasses import dataclass

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
    def __init__(self, store: MetaStore, model: RegistryModel) -> None:
        self.store = store
        self.model = model

    async def locate(self, repo: str, digest: Digest) -> Located:
        text = str(digest)
        size = await self.store.query(self.model.blob_size, repo, text)
        if size is not None:
            return Located(text, size)
        manifest = await self.store.query(self.model.manifest_by_digest, repo, text)
        if manifest is not None:
            return Located(text, len(manifest.content), manifest)
        raise unknown(repo, text)

    async def mount(self, repo: str, source: str, digest: Digest) -> bool:
        """Link a blob ``source`` holds into ``repo``; False when ``source`` lacks it."""
        return await self.store.run(self.model.mount_blob, repo, source, str(digest)) is not None

    async def unlink(self, repo: str, digest: Digest) -> None:
        if not await self.store.run(self.model.unlink_blob, repo, str(digest)):
            raise unknown(repo, str(digest))
