"""The one grammar of names, tags, digests and image references, for every package of moorage.

Two readings of the same text live here: the distribution spec's, for what a registry request names
(``/v2/<name>/manifests/<tag or digest>``), and docker's, for what a person or the kubelet writes
(``host[:port]/path[:tag][@digest]``: the first component is a registry host only if it holds a ``.`` or
``:`` or is ``localhost``; otherwise the image lives on Docker Hub, ``docker.io``, where a one-component
name gains ``library/``; neither tag nor digest means ``:latest``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moorage.core.errors import DigestInvalid, InvalidInput, NameInvalid, TagInvalid

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
#: The spec's digest grammar; which algorithms the registry can verify is narrower (``ALGORITHMS``).
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
MAX_NAME_LENGTH = 255

#: Algorithms the registry verifies, with the exact length of their hex encoding.
ALGORITHMS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")

DOCKER_HUB = "docker.io"
# Docker Hub's API does not live at docker.io; every client rewrites the host.
DOCKER_HUB_API_HOST = "registry-1.docker.io"
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[0-9a-fA-F:.]+\])(?::(?P<port>[0-9]+))?")
# In an image reference any algorithm is well-formed (the registry decides what it serves).
_ANY_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


# -- what a registry request names ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def parse_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        raise NameInvalid(f"repository name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}",
                          detail={"name": name[:64] + "…"})
    if not NAME_RE.fullmatch(name):
        raise NameInvalid(
            f"invalid repository name {name[:300]!r}: use lowercase path components of [a-z0-9] separated by "
            "'/', each joined by '.', '_', '__' or '-'", detail={"name": name[:300]})
    return name


def is_name(text: str) -> bool:
    return len(text) <= MAX_NAME_LENGTH and NAME_RE.fullmatch(text) is not None


def is_tag(text: str) -> bool:
    return TAG_RE.fullmatch(text) is not None


def parse_tag(text: str) -> str:
    if not is_tag(text):
        raise TagInvalid(f"invalid tag {text[:200]!r}: tags are 1-128 characters of [A-Za-z0-9_.-] and may not "
                         "start with '.' or '-'", detail={"tag": text[:200]})
    return text


def parse_digest(value: str) -> Digest:
    """Parse ``algorithm:hex``, accepting only algorithms the registry can verify."""
    if not DIGEST_RE.fullmatch(value):
        raise DigestInvalid(f"invalid digest {value[:200]!r}: expected <algorithm>:<hex>, e.g. sha256:<64 hex "
                            "digits>", detail={"digest": value[:200]})
    algorithm, _, encoded = value.partition(":")
    length = ALGORITHMS.get(algorithm)
    if length is None:
        raise DigestInvalid(f"unsupported digest algorithm {algorithm[:50]!r}: use sha256 or sha512",
                            detail={"digest": value[:200]})
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        raise DigestInvalid(f"invalid {algorithm} digest {value[:200]!r}: expected {length} lowercase hex digits",
                            detail={"digest": value[:200]})
    return Digest(algorithm, encoded)


def is_digest(text: str) -> bool:
    try:
        parse_digest(text)
    except DigestInvalid:
        return False
    return True


def parse_reference(reference: str) -> tuple[str | None, Digest | None]:
    """A manifest reference is a tag or a digest: return exactly one of them."""
    if ":" in reference:
        return None, parse_digest(reference)
    return parse_tag(reference), None


# RFC 6838's restricted-name, for type and subtype; parameters after ";" are printable ASCII.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
MEDIA_TYPE_RE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}(?:[ \t]*;[ -~]*)?")


def is_media_type(text: str) -> bool:
    """Whether ``text`` is a media type as RFC 6838 spells one (``type/subtype``), as the OCI image spec asks
    of every ``mediaType`` and ``artifactType``."""
    return MEDIA_TYPE_RE.fullmatch(text) is not None


#: Numbers a request carries (``n``, ``Range``, ``Content-Range``) beyond this are beyond any page, blob or
#: offset the registry holds; they all read as this one value.
HUGE = 10 ** 18
_DIGITS = re.compile(r"[0-9]+")


def parse_decimal(text: str) -> int | None:
    """A non-negative decimal of ASCII digits (not ``int``'s reading: no sign, blanks, ``_`` or other
    scripts' digits), or None when ``text`` is not one. Values past ``HUGE`` read as ``HUGE``: ``int()``
    of thousands of digits trips Python's conversion limit (a ValueError) and means nothing more."""
    if not _DIGITS.fullmatch(text):
        return None
    significant = text.lstrip("0")
    return HUGE if len(significant) > len(str(HUGE)) else min(int(significant or "0"), HUGE)


def project_of(repository: str) -> str | None:
    """The project a repository belongs to: its first path component (none for a one-component name)."""
    return repository.split("/", 1)[0] if "/" in repository else None


# -- what a person or the kubelet writes ----------------------------------------------------------------------
class InvalidReference(InvalidInput, ValueError):
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


def split_image(text: str) -> tuple[str, str | None, str | None]:
    """``name[:tag][@digest]`` -> (name, tag, digest), without judging any part: a ``:`` after the last
    ``/`` starts the tag, anything after ``@`` is the digest."""
    name, digest = text, None
    if "@" in name:
        name, digest = name.split("@", 1)
    tag = None
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    return name, tag, digest


def split_registry(name: str) -> tuple[str | None, str]:
    """(registry host[:port] or None for Docker Hub's implicit one, path) of an image name."""
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        return first, rest
    return None, name


def normalise_name(name: str) -> str:
    """``registry/path`` with Docker Hub made explicit (``docker.io/library/x``), as the kubelet looks images up."""
    registry, path = split_registry(name)
    if registry in (None, "index.docker.io", DOCKER_HUB):
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    return f"{registry}/{path}"


def parse_image_reference(text: str) -> ImageReference:
    """Parse like docker's ``reference.ParseNormalizedNamed`` + the kubelet's default tag."""
    raw = text.strip()
    if not raw:
        raise InvalidReference("the image reference is empty")
    if "://" in raw:
        raise InvalidReference(f"{raw!r}: an image reference has no scheme; drop {raw.split('://')[0]}://")
    remainder, tag, digest = split_image(raw)
    if digest is not None and not _ANY_DIGEST.fullmatch(digest):
        raise InvalidReference(f"{raw!r}: {digest!r} is not a digest (algorithm:hex, e.g. sha256:<64 hex>)")
    if tag is not None and not is_tag(tag):
        raise InvalidReference(f"{raw!r}: {tag!r} is not a valid tag (1-128 of [A-Za-z0-9_.-], not "
                               "starting with '.' or '-')")
    registry, path = split_registry(remainder)
    if registry is not None:
        domain = _DOMAIN.fullmatch(registry)
        if domain is None:
            raise InvalidReference(f"{raw!r}: {registry!r} is not a registry host[:port]")
        port = domain.group("port")
        if port is not None and not 0 < int(port) < 65536:
            raise InvalidReference(f"{raw!r}: port {port} is out of range")
    if registry in (None, "index.docker.io", DOCKER_HUB):
        registry = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    if path.lower() != path:
        raise InvalidReference(f"{raw!r}: repository name must be lowercase")
    if not NAME_RE.fullmatch(path):
        raise InvalidReference(f"{raw!r}: {path!r} is not a valid repository path (lowercase components of "
                               "[a-z0-9] joined by '.', '_', '__' or '-', separated by '/')")
    if len(f"{registry}/{path}") > MAX_NAME_LENGTH:
        raise InvalidReference(f"{raw!r}: the name is longer than {MAX_NAME_LENGTH} characters")
    if tag is None and digest is None:
        tag = "latest"
    return ImageReference(original=raw, registry=registry, repository=path, tag=tag, digest=digest)
