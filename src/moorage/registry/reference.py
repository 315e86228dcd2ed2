"""The spec's grammar for repository names, tags and digests."""

from __future__ import annotations

import re
from dataclasses import dataclass

from moorage.registry.errors import DigestInvalid, ManifestInvalid, NameInvalid

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
MAX_NAME_LENGTH = 255

#: Algorithms the registry verifies, with the exact length of their hex encoding.
ALGORITHMS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")


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
            f"invalid repository name {name!r}: use lowercase path components of [a-z0-9] separated by "
            "'/', each joined by '.', '_', '__' or '-'", detail={"name": name})
    return name


def is_tag(reference: str) -> bool:
    return TAG_RE.fullmatch(reference) is not None


def parse_digest(value: str, error: type[Exception] = DigestInvalid) -> Digest:
    """Parse ``algorithm:hex``, accepting only algorithms the registry can verify."""
    if not DIGEST_RE.fullmatch(value):
        raise error(f"invalid digest {value!r}: expected <algorithm>:<hex>, e.g. sha256:<64 hex digits>",
                    detail={"digest": value[:200]})
    algorithm, _, encoded = value.partition(":")
    length = ALGORITHMS.get(algorithm)
    if length is None:
        raise error(f"unsupported digest algorithm {algorithm!r}: use sha256 or sha512",
                    detail={"digest": value[:200]})
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        raise error(f"invalid {algorithm} digest {value!r}: expected {length} lowercase hex digits",
                    detail={"digest": value[:200]})
    return Digest(algorithm, encoded)


def parse_reference(reference: str) -> tuple[str | None, Digest | None]:
    """A manifest reference is a tag or a digest: return exactly one of them."""
    if ":" in reference:
        return None, parse_digest(reference)
    if not is_tag(reference):
        raise ManifestInvalid(f"invalid tag {reference!r}: tags are 1-128 characters of [A-Za-z0-9_.-] "
                              "and may not start with '.' or '-'", detail={"tag": reference[:200]})
    return reference, None
