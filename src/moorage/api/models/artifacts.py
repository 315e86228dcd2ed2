"""Repositories, artifacts, the references of an index, tags."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from moorage.api.models.common import DateTime, Int64, Model


class Repository(Model):
    id: Int64
    project_id: Int64
    name: str
    description: str
    artifact_count: Int64
    pull_count: Int64
    creation_time: DateTime
    update_time: DateTime


class Platform(Model):
    """The platform an index's descriptor names (OCI's field names, ``os.version`` included)."""

    architecture: str | None = None
    os: str | None = None
    os_version: str | None = Field(default=None, alias="os.version")
    os_features: list[str] | None = Field(default=None, alias="os.features")
    variant: str | None = None


class Reference(Model):
    """A manifest an index lists."""

    parent_id: Int64
    child_id: Int64
    child_digest: str
    platform: Platform | None = None
    annotations: dict[str, str] | None = None
    urls: list[str] | None = None


class Tag(Model):
    """A tag; to create one (``createTag``) only ``name`` counts."""

    id: Int64 | None = None
    repository_id: Int64 | None = None
    artifact_id: Int64 | None = None
    name: str | None = None
    push_time: DateTime | None = None
    pull_time: DateTime | None = None
    immutable: bool | None = None


class AdditionLink(Model):
    href: str
    absolute: bool


class Artifact(Model):
    id: Int64
    #: IMAGE for images and image indexes, else UNKNOWN
    type: str
    #: The config's media type for an image, the manifest's otherwise (as Harbor)
    media_type: str
    manifest_media_type: str
    artifact_type: str
    project_id: Int64
    repository_id: Int64
    repository_name: str
    digest: str
    size: Int64
    icon: str
    push_time: DateTime
    pull_time: DateTime
    #: For an image: architecture, os, created, author and config, from its config blob.
    extra_attrs: dict[str, Any]
    annotations: dict[str, str]
    references: list[Reference]
    tags: list[Tag] | None = None
    addition_links: dict[str, AdditionLink]
    #: Harbor's Label objects; moorage has no labels, so the list is always empty.
    labels: list[dict[str, Any]] | None = None
