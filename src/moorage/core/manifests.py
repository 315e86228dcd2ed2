"""Manifests: parsing and validating what is pushed (what it is, what it references, what it refers to),
and the service that stores, finds and deletes them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from moorage.core import jsondepth, quotas
from moorage.core.errors import (
    ChildManifestsUnknown,
    DigestInvalid,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    ReferencesUnknown,
)
from moorage.core.immutability import ImmutabilityGuard, refusal
from moorage.core.mediatypes import (
    DOCKER_SCHEMA1,
    FOREIGN_LAYER_PREFIXES,
    IMAGE_MANIFESTS,
    INDEXES,
    MANIFESTS,
    OCI_ARTIFACT_DRAFT,
    OCI_INDEX,
    OCI_MANIFEST,
)
from moorage.core.reference import Digest, is_media_type, parse_digest
from moorage.meta import outbox
from moorage.meta.quotas import OverQuota
from moorage.meta.registry import MissingReferences, NewManifest, Referrer, RegistryModel, StoredManifest, TagTaken
from moorage.meta.store import MetaStore


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    artifact_type: str | None
    subject: str | None
    annotations: str | None
    blob_refs: tuple[str, ...]
    manifest_refs: tuple[str, ...]


# The image spec types sizes as int64: clients in Go cannot read a larger one.
_MAX_SIZE = 2 ** 63 - 1


def _descriptor(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object with mediaType, digest and size")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not is_media_type(media_type):
        raise ManifestInvalid(f"{where}.mediaType must be a media type (type/subtype, RFC 6838), not "
                              f"{str(media_type)[:100]!r}")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest must be a string like sha256:<hex>")
    try:
        parse_digest(digest)
    except DigestInvalid as exc:
        raise ManifestInvalid(f"{where}.digest: {exc.message}", detail=exc.detail) from None
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= _MAX_SIZE:
        raise ManifestInvalid(f"{where}.size must be a non-negative 64-bit integer, not {str(size)[:30]}")
    return value


def _media_type(document: dict[str, Any], content_type: str | None) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    header = (content_type or "").split(";")[0].strip().lower() or None
    if header in ("application/json", "application/octet-stream"):
        header = None
    if declared in DOCKER_SCHEMA1 or header in DOCKER_SCHEMA1 or document.get("schemaVersion") == 1:
        raise ManifestInvalid("Docker schema 1 manifests are not supported (deprecated since 2017): push "
                              "with a current client, or convert with `skopeo copy --format v2s2`")
    if declared and header and declared != header:
        raise ManifestInvalid(f"the manifest's mediaType {declared!r} does not match the request's "
                              f"Content-Type {header!r}; they must agree")
    media_type = declared or header
    if media_type is None:
        # OCI allows mediaType to be absent; the document's shape says which kind it is.
        media_type = OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if media_type == OCI_ARTIFACT_DRAFT:
        raise ManifestInvalid("the draft OCI artifact manifest was dropped from OCI 1.1: push an image "
                              "manifest with artifactType instead")
    if media_type not in MANIFESTS:
        raise ManifestInvalid(f"unsupported manifest media type {media_type!r}; supported: "
                              + ", ".join(sorted(MANIFESTS)))
    return media_type


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    try:
        document = jsondepth.loads_exchanged(body)
    except jsondepth.TooDeeplyNested as exc:
        raise ManifestInvalid(f"the manifest nests arrays and objects deeper than {exc.max_depth} levels; "
                              "a manifest nests about 4 deep") from None
    except ValueError as exc:
        # Also not UTF-8, duplicate names, NaN, integers too long to convert: bad input, none a server error.
        raise ManifestInvalid(f"the manifest is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestInvalid("the manifest must be a JSON object")
    media_type = _media_type(document, content_type)
    version = document.get("schemaVersion")
    # The integer 2: Python's 2.0 == 2 (and True == 1), where Go's int field refuses a float.
    if type(version) is not int or version != 2:
        raise ManifestInvalid(f"schemaVersion must be the integer 2, not {json.dumps(version)[:30]}")

    artifact_type = document.get("artifactType")
    if artifact_type is not None and (not isinstance(artifact_type, str) or not is_media_type(artifact_type)):
        raise ManifestInvalid(f"artifactType must be a media type (type/subtype, RFC 6838) when present, not "
                              f"{str(artifact_type)[:100]!r}")
    blob_refs: list[str] = []
    manifest_refs: list[str] = []
    if media_type in IMAGE_MANIFESTS:
        config = _descriptor(document.get("config"), "config")
        layers = document.get("layers")
        if not isinstance(layers, list):
            raise ManifestInvalid("layers must be a list of descriptors (it may be empty)")
        blob_refs.append(config["digest"])
        for i, layer in enumerate(layers):
            descriptor = _descriptor(layer, f"layers[{i}]")
            if not descriptor["mediaType"].startswith(FOREIGN_LAYER_PREFIXES):
                blob_refs.append(descriptor["digest"])
        artifact_type = artifact_type or config["mediaType"]
    else:
        assert media_type in INDEXES
        children = document.get("manifests")
        if not isinstance(children, list):
            raise ManifestInvalid("manifests must be a list of descriptors (it may be empty)")
        for i, child in enumerate(children):
            manifest_refs.append(_descriptor(child, f"manifests[{i}]")["digest"])

    subject = None
    if "subject" in document:
        subject = _descriptor(document["subject"], "subject")["digest"]
    annotations = document.get("annotations")
    if annotations is not None and (not isinstance(annotations, dict)
                                    or not all(isinstance(v, str) for v in annotations.values())):
        raise ManifestInvalid("annotations must be an object of string values")
    return ParsedManifest(
        media_type=media_type,
        artifact_type=artifact_type,
        subject=subject,
        annotations=json.dumps(annotations, sort_keys=True) if annotations else None,
        blob_refs=tuple(dict.fromkeys(blob_refs)),
        manifest_refs=tuple(dict.fromkeys(manifest_refs)),
    )


@dataclass(frozen=True, slots=True)
class Pushed:
    digest: str
    #: The digest this manifest refers to (``subject``), echoed to the client as ``OCI-Subject``.
    subject: str | None


class ManifestService:
    def __init__(self, store: MetaStore, model: RegistryModel, immutability: ImmutabilityGuard | None = None) -> None:
        self.store = store
        self.model = model
        #: Refuses to move or delete a tag an immutable tag rule holds (every client's push and delete come here).
        self.immutability = immutability

    async def get(self, repo: str, tag: str | None, digest: Digest | None) -> StoredManifest:
        """The manifest a tag or a digest names in ``repo``."""
        if tag is not None:
            manifest = await self.store.query(self.model.manifest_by_tag, repo, tag)
        else:
            manifest = await self.store.query(self.model.manifest_by_digest, repo, str(digest))
        if manifest is None:
            what = f"tag {tag!r}" if tag is not None else f"manifest {digest}"
            raise ManifestUnknown(f"{what} is not in repository {repo}",
                                  detail={"name": repo, "reference": tag or str(digest)})
        return manifest

    async def put(self, repo: str, body: bytes, content_type: str | None, tags: list[str],
                  expected: Digest | None = None, operator: str | None = None) -> Pushed:
        """Store ``body`` (pushed by digest ``expected``, or under ``tags``) once everything it references is
        in ``repo``; nothing is stored when anything is wrong. With an ``operator`` (who pushed), the push's
        events are recorded with it."""
        algorithm = expected.algorithm if expected else "sha256"
        digest = Digest(algorithm, hashlib.new(algorithm, body).hexdigest())
        if expected is not None and digest != expected:
            raise DigestInvalid(f"the manifest's content has digest {digest}, not {expected} as the URL says",
                                detail={"expected": str(expected), "actual": str(digest)})
        parsed = parse_manifest(body, content_type)
        held = await self.immutability.check_push(repo, tags, str(digest)) if self.immutability is not None else {}
        try:
            await self.store.run(self.model.put_manifest, repo, NewManifest(
                digest=str(digest), media_type=parsed.media_type, artifact_type=parsed.artifact_type,
                subject=parsed.subject, annotations=parsed.annotations, content=body,
                blob_refs=parsed.blob_refs, manifest_refs=parsed.manifest_refs), tags, operator, list(held))
        except TagTaken as taken:  # a concurrent first push of the immutable tag won
            raise refusal(held[taken.tag], repo, taken.tag, f"push other content as {repo}:{taken.tag}") from None
        except MissingReferences as missing:
            if missing.blobs:
                raise ReferencesUnknown(f"the manifest references blob(s) not in repository {repo}: "
                                        + ", ".join(sorted(missing.blobs)) + "; push them first",
                                        detail={"digests": sorted(missing.blobs)}) from None
            raise ChildManifestsUnknown(f"the index references manifest(s) not in repository {repo}: "
                                        + ", ".join(sorted(missing.manifests)) + "; push them first",
                                        detail={"digests": sorted(missing.manifests)}) from None
        except OverQuota as over:
            if operator is not None:
                # The refused push rolled back, events and all: the refusal is an event of its own.
                await self.store.run(outbox.record_alone, self.store, [outbox.quota_exceeded(
                    repo, str(digest), operator, over.adding, over.used, over.hard)])
            raise quotas.refused(over) from None
        return Pushed(str(digest), parsed.subject)

    async def delete(self, repo: str, tag: str | None, digest: Digest | None, operator: str | None = None) -> None:
        """Delete a tag, or a manifest with every tag on it (events recorded with it when ``operator`` is given)."""
        if not await self.store.query(self.model.repository_exists, repo):
            raise NameUnknown(f"repository {repo} does not exist", detail={"name": repo})
        if self.immutability is not None:
            await self.immutability.check_delete(repo, tag, None if digest is None else str(digest))
        if tag is not None:
            deleted = await self.store.run(self.model.delete_tag, repo, tag, operator)
        else:
            deleted = await self.store.run(self.model.delete_manifest, repo, str(digest), operator)
        if not deleted:
            reference = tag if tag is not None else str(digest)
            raise ManifestUnknown(f"{reference} is not in repository {repo}",
                                  detail={"name": repo, "reference": reference})

    async def referrers(self, repo: str, subject: Digest, artifact_type: str | None) -> list[Referrer]:
        if artifact_type is not None and "\x00" in artifact_type:
            return []  # no artifact type stored holds NUL, and PostgreSQL refuses to compare text with one
        return await self.store.query(self.model.referrers, repo, str(subject), artifact_type)
