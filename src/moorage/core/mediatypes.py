"""Manifest media types the registry stores and serves."""

from __future__ import annotations

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")
OCI_ARTIFACT_DRAFT = "application/vnd.oci.artifact.manifest.v1+json"

IMAGE_MANIFESTS = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEXES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFESTS = IMAGE_MANIFESTS | INDEXES

#: Layers that live outside the registry by design; a manifest may name them without us holding them.
FOREIGN_LAYER_PREFIXES = ("application/vnd.docker.image.rootfs.foreign.",
                          "application/vnd.oci.image.layer.nondistributable.")
