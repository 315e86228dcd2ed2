"""Images the workloads push during setup, through the registry API like any client would."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.loadgen.common import file_digest
from bench.loadgen.http import FileBody
from bench.registry import Registry, image_config, image_manifest, sha256_digest

PREFIX_BYTES = 16


def unique_prefix(label: str) -> bytes:
    """16 bytes that make a blob cut from a shared random file distinct from every other blob."""
    return label.encode().ljust(PREFIX_BYTES, b".")[:PREFIX_BYTES]


@dataclass
class PushedImage:
    repo: str
    tag: str
    digest: str
    manifest: bytes
    layers: list[tuple[str, int]]


def file_blob(path: str, size: int, label: str) -> tuple[FileBody, str]:
    body = FileBody(path, 0, size - PREFIX_BYTES, unique_prefix(label))
    return body, file_digest(body.prefix, path, body.count)


def push_image(registry: Registry, repo: str, tag: str, layers: list[tuple[FileBody | bytes, str]],
               annotations: dict[str, str] | None = None) -> PushedImage:
    """Layers (in parallel, as clients do), then the config, then the manifest by tag."""
    def push_layer(layer: tuple[FileBody | bytes, str]) -> tuple[str, int]:
        body, digest = layer
        registry.push_blob(repo, digest, body)
        return digest, body.length if isinstance(body, FileBody) else len(body)

    with ThreadPoolExecutor(max_workers=min(4, len(layers) or 1)) as pool:
        descriptors = list(pool.map(push_layer, layers))
    config = image_config([d for d, _ in descriptors])
    registry.push_blob(repo, sha256_digest(config), config)
    manifest = image_manifest((sha256_digest(config), len(config)), descriptors, annotations)
    digest = registry.put_manifest(repo, tag, manifest)
    return PushedImage(repo, tag, digest, manifest, descriptors)
