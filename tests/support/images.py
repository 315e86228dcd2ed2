"""Build OCI image layouts on disk, offline, for real clients to push.

Every image gets fresh random content, so its layer, config and manifest digests are unique: tests never
see each other's blobs. Layers are real gzip tars with a regular file, and the config's ``rootfs.diff_ids``
are the sha256 of the uncompressed tars, so containerd and docker can unpack what they pull.

One layout directory may hold several images (one per tag), like ``skopeo copy`` into ``oci:DIR:TAG`` does.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform as _platform
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal

from tests.support.oci import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, digest_of

OCI_LAYOUT_VERSION = "1.0.0"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME = "org.opencontainers.image.ref.name"

Flavor = Literal["oci", "docker"]
Platform = tuple[str, str] | tuple[str, str, str]  # (os, architecture[, variant])

MEDIA_TYPES: dict[str, dict[str, str]] = {
    "oci": {"manifest": OCI_MANIFEST, "index": OCI_INDEX, "config": OCI_CONFIG, "layer": OCI_LAYER},
    "docker": {"manifest": DOCKER_MANIFEST, "index": DOCKER_LIST, "config": DOCKER_CONFIG, "layer": DOCKER_LAYER},
}

_GO_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
            "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_CHUNK = 1 << 20


def local_platform() -> tuple[str, str]:
    """This machine's (os, architecture) in OCI/Go spelling: what ``ctr images pull`` unpacks by default."""
    return ("linux", _GO_ARCH.get(_platform.machine(), _platform.machine()))


def other_platforms() -> list[tuple[str, str]]:
    local = local_platform()
    return [local, ("linux", "arm64" if local[1] != "arm64" else "amd64")]


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class ImageInfo:
    """One single-platform image in a layout: what a test needs to assert on after a push or pull."""

    layout: Path
    tag: str
    flavor: Flavor
    platform: Platform
    manifest: Blob
    config: Blob
    layers: list[Blob]
    diff_ids: list[str]
    manifest_bytes: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def media_type(self) -> str:
        return self.manifest.media_type

    @property
    def layer_digests(self) -> list[str]:
        return [layer.digest for layer in self.layers]

    @property
    def layer_sizes(self) -> list[int]:
        return [layer.size for layer in self.layers]

    @property
    def size(self) -> int:
        """Bytes a push uploads: manifest + config + layers."""
        return self.manifest.size + self.config.size + sum(self.layer_sizes)

    @property
    def ref(self) -> str:
        """The skopeo source for this image: ``oci:DIR:TAG``, or ``dir:…`` for the docker flavor."""
        return _transport_ref(self.layout, self.tag, self.flavor)

    @property
    def oci_ref(self) -> str:
        """``oci:DIR:TAG``: the skopeo/podman reference into the OCI layout (oci flavor; docker: use ``ref``)."""
        return f"oci:{self.layout}:{self.tag}"

    def blob_path(self, digest: str) -> Path:
        return blob_path(self.layout, digest)


@dataclass(frozen=True)
class IndexInfo:
    """A multi-platform image: an OCI index (or docker manifest list) whose children are per-platform images."""

    layout: Path
    tag: str
    flavor: Flavor
    manifest: Blob
    images: list[ImageInfo]
    manifest_bytes: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def media_type(self) -> str:
        return self.manifest.media_type

    @property
    def ref(self) -> str:
        """The skopeo source for this image (push it with ``--all``)."""
        return _transport_ref(self.layout, self.tag, self.flavor)

    @property
    def oci_ref(self) -> str:
        """``oci:DIR:TAG``: the skopeo/podman reference into the OCI layout (oci flavor; docker: use ``ref``)."""
        return f"oci:{self.layout}:{self.tag}"

    def for_platform(self, os_name: str, architecture: str) -> ImageInfo:
        for image in self.images:
            if image.platform[:2] == (os_name, architecture):
                return image
        raise KeyError(f"no {os_name}/{architecture} image in {self.tag}")


def _transport_ref(layout: Path, tag: str, flavor: Flavor) -> str:
    # skopeo's oci: transport only lists OCI media types in index.json, so docker-typed images are also
    # written as a ``dir:`` transport copy (which takes the media type from the manifest itself).
    return f"oci:{layout}:{tag}" if flavor == "oci" else f"dir:{dir_view(layout, tag)}"


def dir_view(layout: Path, tag: str) -> Path:
    return Path(layout) / "dir-transport" / tag


def _write_dir_view(layout: Path, tag: str, top: Blob, instances: list[ImageInfo]) -> None:
    """Write the ``dir:`` transport form of an image: version file, manifest.json, blobs by hex digest."""
    target = dir_view(layout, tag)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / "version").write_text("Directory Transport Version: 1.1\n")
    shutil.copyfile(blob_path(layout, top.digest), target / "manifest.json")
    for image in instances:
        if image.manifest.digest != top.digest:
            hex_digest = image.manifest.digest.split(":", 1)[1]
            shutil.copyfile(blob_path(layout, image.manifest.digest), target / f"{hex_digest}.manifest.json")
        for blob in [image.config, *image.layers]:
            destination = target / blob.digest.split(":", 1)[1]
            if not destination.exists():
                os.link(blob_path(layout, blob.digest), destination)


def blob_path(layout: Path, digest: str) -> Path:
    algorithm, hex_digest = digest.split(":", 1)
    return Path(layout) / "blobs" / algorithm / hex_digest


class _HashingWriter(io.RawIOBase):
    """Writes through to a file while hashing and counting, so a layer is never read back to digest it."""

    def __init__(self, target: BinaryIO) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        self.size += len(view)
        self.target.write(view)
        return len(view)

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


class _RandomReader(io.RawIOBase):
    """``size`` random bytes, read in chunks: makes every layer unique without holding it in memory."""

    def __init__(self, size: int) -> None:
        self.remaining = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        n = self.remaining if n is None or n < 0 else min(n, self.remaining)
        self.remaining -= n
        return os.urandom(n)


def _layout_init(layout: Path) -> None:
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    marker = layout / "oci-layout"
    if not marker.exists():
        marker.write_text(json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION}))
    index = layout / "index.json"
    if not index.exists():
        index.write_text(json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}))


def _write_blob(layout: Path, data: bytes, media_type: str) -> Blob:
    digest = digest_of(data)
    path = blob_path(layout, digest)
    if not path.exists():
        path.write_bytes(data)
    return Blob(digest, len(data), media_type)


def _write_layer(layout: Path, size: int, media_type: str, index: int) -> tuple[Blob, str]:
    """A gzip tar with a directory and a file of ``size`` random bytes; returns (blob, diff_id)."""
    scratch = layout / "blobs" / "sha256"
    with tempfile.NamedTemporaryFile(dir=scratch, prefix=".tar-", delete=False) as raw_tar:
        tar_hash = _HashingWriter(raw_tar)
        with tarfile.open(fileobj=tar_hash, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            folder = tarfile.TarInfo(f"data{index}")
            folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(folder)
            marker = f"layer {index} of a moorage test image\n".encode()
            info = tarfile.TarInfo(f"data{index}/README")
            info.size, info.mode, info.mtime = len(marker), 0o644, 0
            tar.addfile(info, io.BytesIO(marker))
            info = tarfile.TarInfo(f"data{index}/random.bin")
            info.size, info.mode, info.mtime = size, 0o644, 0
            tar.addfile(info, _RandomReader(size))
    raw_path = Path(raw_tar.name)
    try:
        with tempfile.NamedTemporaryFile(dir=scratch, prefix=".gz-", delete=False) as compressed:
            gz_hash = _HashingWriter(compressed)
            # Level 1: the payload is random (incompressible) and big layers must build fast.
            with gzip.GzipFile(fileobj=gz_hash, mode="wb", compresslevel=1, mtime=0) as gz, \
                    raw_path.open("rb") as source:
                while chunk := source.read(_CHUNK):
                    gz.write(chunk)
        Path(compressed.name).replace(blob_path(layout, gz_hash.digest))
    finally:
        raw_path.unlink(missing_ok=True)
    return Blob(gz_hash.digest, gz_hash.size, media_type), tar_hash.digest


def _platform_dict(platform: Platform) -> dict[str, str]:
    result = {"architecture": platform[1], "os": platform[0]}
    if len(platform) > 2:
        result["variant"] = platform[2]
    return result


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=False).encode()


def _add_to_index(layout: Path, descriptor: dict[str, Any], tag: str) -> None:
    """Point ``tag`` at ``descriptor`` in index.json, replacing any previous image with that tag."""
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    index["manifests"] = [m for m in index["manifests"] if m.get("annotations", {}).get(REF_NAME) != tag]
    index["manifests"].append({**descriptor, "annotations": {REF_NAME: tag}})
    index_path.write_text(json.dumps(index, indent=2))


def _build_single(layout: Path, layers: int, layer_size: int | list[int], platform: Platform,
                  flavor: Flavor, labels: dict[str, str] | None) -> tuple[ImageInfo, dict[str, Any]]:
    types = MEDIA_TYPES[flavor]
    sizes = layer_size if isinstance(layer_size, list) else [layer_size] * layers
    built = [_write_layer(layout, size, types["layer"], i) for i, size in enumerate(sizes)]
    layer_blobs = [blob for blob, _ in built]
    diff_ids = [diff_id for _, diff_id in built]
    config_doc: dict[str, Any] = {
        "created": "2024-01-01T00:00:00Z",
        **_platform_dict(platform),
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/data0/README"], "Labels": {"moorage.test.nonce": os.urandom(8).hex(), **(labels or {})}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"moorage test layer {i}"}
                    for i in range(len(diff_ids))],
    }
    config = _write_blob(layout, _dumps(config_doc), types["config"])
    manifest_doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": types["manifest"],
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layer_blobs],
    }
    manifest_bytes = _dumps(manifest_doc)
    manifest = _write_blob(layout, manifest_bytes, types["manifest"])
    image = ImageInfo(layout=layout, tag="", flavor=flavor, platform=platform, manifest=manifest, config=config,
                      layers=layer_blobs, diff_ids=diff_ids, manifest_bytes=manifest_bytes)
    return image, manifest.descriptor(platform=_platform_dict(platform))


def build_image(layout: Path, tag: str = "v1", layers: int = 1, layer_size: int | list[int] = 4096,
                platform: Platform | None = None, flavor: Flavor = "oci",
                labels: dict[str, str] | None = None) -> ImageInfo:
    """Write a single-platform image tagged ``tag`` into the OCI layout at ``layout`` (created if needed).

    ``layer_size`` is the random payload per layer (one int for all, or a list with one size per layer).
    ``flavor="docker"`` writes Docker v2 schema 2 media types (the layout format itself stays OCI).
    """
    layout = Path(layout)
    _layout_init(layout)
    image, descriptor = _build_single(layout, layers, layer_size, platform or local_platform(), flavor, labels)
    descriptor.pop("platform")
    _add_to_index(layout, descriptor, tag)
    image = replace(image, tag=tag)
    if flavor == "docker":
        _write_dir_view(layout, tag, image.manifest, [image])
    return image


def build_multiplatform(layout: Path, tag: str = "v1", platforms: list[Platform] | None = None,
                        layers: int = 1, layer_size: int = 4096, flavor: Flavor = "oci") -> IndexInfo:
    """Write an image index (or docker manifest list) tagged ``tag`` with one image per platform.

    The default platforms start with this machine's, so ``ctr images pull`` (which unpacks only the local
    platform) finds its image.
    """
    layout = Path(layout)
    _layout_init(layout)
    types = MEDIA_TYPES[flavor]
    images: list[ImageInfo] = []
    children: list[dict[str, Any]] = []
    for platform in platforms or other_platforms():
        image, descriptor = _build_single(layout, layers, layer_size, platform, flavor, None)
        images.append(replace(image, tag=tag))
        children.append(descriptor)
    index_bytes = _dumps({"schemaVersion": 2, "mediaType": types["index"], "manifests": children})
    index = _write_blob(layout, index_bytes, types["index"])
    _add_to_index(layout, index.descriptor(), tag)
    if flavor == "docker":
        _write_dir_view(layout, tag, index, images)
    return IndexInfo(layout=layout, tag=tag, flavor=flavor, manifest=index, images=images,
                     manifest_bytes=index_bytes)


def read_index(layout: Path) -> dict[str, Any]:
    """The layout's index.json (e.g. to check what ``skopeo copy`` wrote back)."""
    return json.loads((Path(layout) / "index.json").read_text())


def tagged_descriptor(layout: Path, tag: str) -> dict[str, Any]:
    for descriptor in read_index(layout)["manifests"]:
        if descriptor.get("annotations", {}).get(REF_NAME) == tag:
            return descriptor
    raise KeyError(f"no tag {tag!r} in {layout}/index.json")
