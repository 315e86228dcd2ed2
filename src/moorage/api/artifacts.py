"""An artifact as Harbor shows it, from its row and from what only its manifest and config blob say: the
references of an index (with each child's platform), and an image's ``extra_attrs``.

Only the artifacts of the page being answered are looked into, in one read of their manifests and one thread
hop for their config blobs; a listing of thousands of artifacts costs what its page costs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from pydantic import ValidationError

from moorage.api.base import Call, iso
from moorage.api.models.artifacts import Artifact, Platform, Reference, Tag
from moorage.blobs.driver import BlobDriver
from moorage.core import jsondepth
from moorage.core.errors import DomainError
from moorage.meta.projects import ArtifactRow, TagRow

#: A config blob larger than this is not read for ``extra_attrs`` (real ones are a few KiB).
MAX_CONFIG_BYTES = 4 * 1024 * 1024
_IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json")
_INDEXES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1"
_HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a manifest's JSON names: its config descriptor, or the manifests an index lists."""

    config: dict[str, Any] | None
    manifests: list[dict[str, Any]]


def parse(content: bytes | None) -> Parsed:
    """The manifest's descriptors; nothing for what is not the JSON the registry accepted at push."""
    try:
        document = jsondepth.loads(content) if content else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return Parsed(None, [])
    config = document.get("config")
    listed = document.get("manifests")
    return Parsed(config if isinstance(config, dict) else None,
                  [d for d in listed if isinstance(d, dict) and isinstance(d.get("digest"), str)]
                  if isinstance(listed, list) else [])


def _strings(value: Any) -> dict[str, str] | None:
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else None


def references(parent_id: int, parsed: Parsed, child_ids: dict[str, int]) -> list[Reference]:
    """Harbor's Reference of each manifest an index lists, with the platform its descriptor names."""
    found = []
    for descriptor in parsed.manifests:
        platform = None
        if isinstance(descriptor.get("platform"), dict):
            try:
                platform = Platform.model_validate(descriptor["platform"])
            except ValidationError:
                platform = None
        urls = descriptor.get("urls")
        found.append(Reference(parent_id=parent_id, child_id=child_ids.get(descriptor["digest"], 0),
                               child_digest=descriptor["digest"], platform=platform,
                               annotations=_strings(descriptor.get("annotations")),
                               urls=[u for u in urls if isinstance(u, str)] if isinstance(urls, list) else None))
    return found


def extra_attrs(config: bytes | None) -> dict[str, Any]:
    """What Harbor shows of an image's config: architecture, os, created, author, config."""
    try:
        document = jsondepth.loads(config) if config else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return {}
    attrs = {key: document[key] for key in ("architecture", "os", "created") if isinstance(document.get(key), str)}
    inner = document.get("config")
    if isinstance(inner, dict):
        attrs["config"] = inner
    author = document.get("author")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    if not author and isinstance(labels, dict):
        # As Harbor: an image without an author names its maintainer label instead.
        author = labels.get("maintainer")
    attrs["author"] = author if isinstance(author, str) else ""
    return attrs


def _type(media_type: str, config_type: Any) -> str:
    """Harbor's artifact type: IMAGE (an image, an index of images, a schema 1 manifest), CHART, else UNKNOWN."""
    if config_type in _IMAGE_CONFIGS or media_type in _INDEXES or media_type.startswith(_SCHEMA1):
        return "IMAGE"
    if config_type == _HELM_CONFIG:
        return "CHART"
    return "UNKNOWN"


def _read_configs(driver: BlobDriver, digests: set[str]) -> dict[str, bytes]:
    found = {}
    for digest in digests:
        try:
            data = driver.read_small(digest, MAX_CONFIG_BYTES)
        except (OSError, DomainError):
            continue  # unreadable (or the store unreachable): the artifact is shown without its attributes
        if data is not None and len(data) <= MAX_CONFIG_BYTES:
            found[digest] = data
    return found


def blob_driver(call: Call) -> BlobDriver:
    state = call.request.app.state
    services = getattr(state, "services", None) or state.registry
    driver: BlobDriver = services.driver
    return driver


def render_tag(artifact: ArtifactRow, tag: TagRow, immutable: bool) -> Tag:
    return Tag(id=tag.id, repository_id=artifact.repository_id, artifact_id=artifact.id, name=tag.name,
               push_time=iso(tag.pushed_at), pull_time=iso(tag.pulled_at), immutable=immutable)


async def render(call: Call, rows: list[ArtifactRow], project_id: int, with_tag: bool = True) -> list[Artifact]:
    """Harbor's Artifact for each of ``rows`` (one page), looked into as the module docstring says."""
    if not rows:
        return []
    contents = await call.query(call.auth.projects.manifest_contents, [row.id for row in rows])
    parsed = {row.id: parse(contents.get(row.id)) for row in rows}
    children = sorted({d["digest"] for p in parsed.values() for d in p.manifests})
    child_ids = await call.query(call.auth.projects.manifest_ids, rows[0].repository_id, children)
    wanted = {p.config["digest"] for p in parsed.values()
              if p.config and p.config.get("mediaType") in _IMAGE_CONFIGS and isinstance(p.config.get("digest"), str)}
    configs = await anyio.to_thread.run_sync(_read_configs, blob_driver(call), wanted) if wanted else {}
    held = await call.services.immutability.immutable_tags(rows[0].repository_name,
                                                           [t.name for row in rows for t in row.tags])
    return [_artifact(row, parsed[row.id], child_ids, configs, project_id, with_tag, held) for row in rows]


def _artifact(row: ArtifactRow, parsed: Parsed, child_ids: dict[str, int], configs: dict[str, bytes],
              project_id: int, with_tag: bool, immutable: set[str]) -> Artifact:
    config_type = parsed.config.get("mediaType") if parsed.config else None
    image_config = configs.get(parsed.config["digest"]) if parsed.config and config_type in _IMAGE_CONFIGS else None
    try:
        annotations = _strings(json.loads(row.annotations)) if row.annotations else None
    except ValueError:
        annotations = None
    return Artifact(
        id=row.id, type=_type(row.media_type, config_type),
        media_type=config_type if isinstance(config_type, str) else row.media_type,
        manifest_media_type=row.media_type, artifact_type=row.artifact_type or "", project_id=project_id,
        repository_id=row.repository_id, repository_name=row.repository_name, digest=row.digest, size=row.size,
        icon="", push_time=iso(row.created_at), pull_time=iso(row.pull_time),
        extra_attrs=extra_attrs(image_config) if image_config is not None else {}, annotations=annotations or {},
        references=references(row.id, parsed, child_ids),
        tags=[render_tag(row, t, t.name in immutable) for t in row.tags] if with_tag else None, addition_links={})
