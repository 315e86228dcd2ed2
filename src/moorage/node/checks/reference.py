"""Image references as the kubelet and every runtime parse them (docker's reference grammar).

``host[:port]/path[:tag][@digest]``; the first component is a registry host only if it contains a
``.`` or ``:`` or is ``localhost`` (otherwise the image lives on Docker Hub, ``docker.io``, and a
one-component name gains ``library/``). A reference with neither tag nor digest means ``:latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
# Docker Hub's API does not live at docker.io; every client rewrites the host.
DOCKER_HUB_API_HOST = "registry-1.docker.io"

_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9a-fA-F:.]+\])(?::(?P<port>[0-9]+))?")
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
MAX_NAME_LENGTH = 255


class InvalidReference(ValueError):
    """The text is not a valid image reference; the message says which part is wrong."""


@dataclass(frozen=True, slots=True)
class ImageReference:
    """A parsed reference. ``registry`` is spelled as in the image (``host[:port]``)."""

    original: str
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def host(self) -> str:
        """The host to connect to (brackets of an IPv6 literal removed, Docker Hub's API host)."""
        netloc = DOCKER_HUB_API_HOST if self.registry == DOCKER_HUB else self.registry
        if netloc.startswith("["):
            return netloc[1:netloc.index("]")]
        return netloc.rsplit(":", 1)[0] if ":" in netloc else netloc

    @property
    def port(self) -> int | None:
        """The port written in the reference, or None when the scheme's default applies."""
        tail = self.registry.rsplit("]", 1)[-1]
        return int(tail.rsplit(":", 1)[1]) if ":" in tail else None

    @property
    def reference(self) -> str:
        """What the manifest endpoint is asked for: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """``registry/repository``: what the kubelet's keyring matches against."""
        return f"{self.registry}/{self.repository}"

    @property
    def project(self) -> str:
        return self.repository.split("/", 1)[0]

    def familiar(self) -> str:
        """The reference with its defaults made explicit (``docker.io/library/x:latest``)."""
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image_reference(text: str) -> ImageReference:
    """Parse like docker's ``reference.ParseNormalizedNamed`` + the kubelet's default tag."""
    raw = text.strip()
    if not raw:
        raise InvalidReference("the image reference is empty")
    if "://" in raw:
        raise InvalidReference(f"{raw!r}: an image reference has no scheme; drop {raw.split('://')[0]}://")
    remainder, digest = raw, None
    if "@" in remainder:
        remainder, digest = remainder.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise InvalidReference(f"{raw!r}: {digest!r} is not a digest (algorithm:hex, e.g. sha256:<64 hex>)")
    tag = None
    slash, colon = remainder.rfind("/"), remainder.rfind(":")
    if colon > slash:
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"{raw!r}: {tag!r} is not a valid tag (1-128 of [A-Za-z0-9_.-], not "
                                 "starting with '.' or '-')")
    first, sep, rest = remainder.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        if not _DOMAIN.fullmatch(first):
            raise InvalidReference(f"{raw!r}: {first!r} is not a registry host[:port]")
        port = _DOMAIN.fullmatch(first).group("port")  # type: ignore[union-attr]
        if port is not None and not 0 < int(port) < 65536:
            raise InvalidReference(f"{raw!r}: port {port} is out of range")
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, remainder
    if registry in ("index.docker.io", DOCKER_HUB):
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    if path.lower() != path:
        raise InvalidReference(f"{raw!r}: repository name must be lowercase")
    if not _PATH.fullmatch(path):
        raise InvalidReference(f"{raw!r}: {path!r} is not a valid repository path (lowercase components of "
                             "[a-z0-9] joined by '.', '_', '__' or '-', separated by '/')")
    if len(f"{registry}/{path}") > MAX_NAME_LENGTH:
        raise InvalidReference(f"{raw!r}: the name is longer than {MAX_NAME_LENGTH} characters")
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(original=raw, registry=registry, repository=path, tag=tag, digest=digest)
