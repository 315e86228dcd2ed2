"""Parse and validate a pushed manifest: what it is, what it references, what it refers to."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from moorage.core import jsondepth
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
from moorage.registry.errors import ManifestInvalid
from moorage.registry.reference import parse_digest


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    artifact_type: str | None
    subject: str | None
    annotations: str | None
    blob_refs: tuple[str, ...]
    manifest_refs: tuple[str, ...]


def _descriptor(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object with mediaType, digest and size")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType must be a non-empty string")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest must be a string like sha256:<hex>")
    parse_digest(digest, error=ManifestInvalid)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
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
        document = jsondepth.loads(body)
    except jsondepth.TooDeeplyNested as exc:
        raise ManifestInvalid(f"the manifest nests arrays and objects deeper than {exc.max_depth} levels; "
                              "a manifest nests about 4 deep") from None
    except ValueError as exc:
        # Also invalid UTF-8 and integers too long to convert: all of them bad input, none a server error.
        raise ManifestInvalid(f"the manifest is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ManifestInvalid("the manifest must be a JSON object")
    media_type = _media_type(document, content_type)
    if document.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")

    artifact_type = document.get("artifactType")
    if artifact_type is not None and (not isinstance(artifact_type, str) or not artifact_type):
        raise ManifestInvalid("artifactType must be a non-empty string when present")
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
